"""Runs one comparison: loads the preset's models, runs the methods together, reports progress."""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .backends import factory
from .backends.factory import ENGINES as ENGINES  # engine names (W2S_ENGINE), importable from here too
from .backends.local import ModelPool
from .backends.role_loaders import LoadContext
from .backends.roles import Role
from .config import Preset, Settings
from .errors import RequestError as RequestError  # raised here and by the role factory
from .search import Models, SamplingParams, SearchResult, method_params, run_methods
from .search.engine import Engine
from .search.shared_loop import SharedLoop

MAX_PROMPT_CHARS = 20_000
NOISE_MODES = ("independent", "shared")


class DeadlineExceeded(RequestError):
    """A comparison ran past the per-request deadline and was stopped."""


def check_bounds(given: dict[str, Any]) -> None:
    """Every given method parameter within its method's bounds, whether or not that method runs."""
    from .search.methods import METHODS

    for info in METHODS.values():
        for key, (typ, _default, lo, hi) in info.params.items():
            value = given.get(key)
            if value is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError) as exc:
                raise RequestError(f"{key} must be a number, got {value!r}") from exc
            if not math.isfinite(number) or not lo <= number <= hi:
                raise RequestError(f"{key} must be between {lo} and {hi}, got {value!r}")
            if typ is int and number != int(number):
                raise RequestError(f"{key} must be a whole number, got {value!r}")


def check_reachable(base_url: str, timeout: float = 5.0) -> None:
    """RequestError when nothing listens at the API server's host and port (a wrong URL, a server down)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        raise RequestError(
            f"cannot reach the API server at {parts.scheme}://{host}:{port}: {exc.strerror or exc}"
        ) from exc


def redact_secrets(text: str) -> str:
    """The API key never lands in the database, even when a server echoes it in an answer."""
    key = os.environ.get("OPENAI_API_KEY")
    return text.replace(key, "[redacted]") if key and len(key) >= 8 and key in text else text


@dataclass
class Comparison:
    """One prompt answered by several methods."""

    prompt: str
    preset: str
    sampling: SamplingParams
    results: list[SearchResult]
    seconds: float
    load_seconds: float = 0.0
    models: dict[str, str] = field(default_factory=dict)
    id: int | None = None  # database id, when a store is attached
    generation_ids: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # display position of each result (0 = A)


def clean_prompt(prompt: Any) -> str:
    """Check a prompt: text, not blank, no NUL or control characters, within a sane length."""
    if not isinstance(prompt, str):
        raise RequestError("the prompt must be text")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in prompt):  # an invalid byte, as Python reads argv
        raise RequestError("the prompt is not valid text (it has an invalid byte); save or type it as UTF-8")
    cleaned = "".join(c for c in prompt if c in "\n\t" or c.isprintable() or ord(c) > 127)
    cleaned = cleaned.replace("\x00", "").strip()
    if not cleaned:
        raise RequestError("the prompt is empty; type a question or instruction")
    if len(cleaned) > MAX_PROMPT_CHARS:
        raise RequestError(f"the prompt has {len(cleaned)} characters; the limit is {MAX_PROMPT_CHARS}")
    return cleaned


def build_methods(
    names: list[str], given: dict[str, Any], preset: Preset
) -> list[tuple[str, dict[str, Any]]]:
    """Method names plus parameters: given values, else the preset's defaults, else the method's."""
    if not names:
        raise RequestError("choose at least one method")
    merged = {**preset.defaults, **{k: v for k, v in given.items() if v is not None}}
    out = []
    for name in names:
        try:
            out.append((name, method_params(name, merged)))
        except ValueError as exc:
            raise RequestError(str(exc)) from exc
    if len({(n, tuple(sorted(p.items()))) for n, p in out}) != len(out):
        raise RequestError("the same method configuration is listed twice")
    return out


def build_sampling(given: dict[str, Any], preset: Preset) -> SamplingParams:
    """Sampling settings with bounds checked."""
    merged = {**preset.defaults, **{k: v for k, v in given.items() if v is not None}}
    try:
        sp = SamplingParams(
            max_new_tokens=int(merged.get("max_new_tokens", 128)),
            temperature=float(merged.get("temperature", 0.7)),
            top_p=float(merged.get("top_p", 1.0)),
            seed=int(merged.get("seed", 0)),
            noise=str(merged.get("noise", "independent")),
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise RequestError(f"sampling settings must be finite numbers: {exc}") from exc
    if sp.noise not in NOISE_MODES:
        raise RequestError(f"noise must be one of {', '.join(NOISE_MODES)}, got {sp.noise!r}")
    if not 1 <= sp.max_new_tokens <= 4096:
        raise RequestError(f"max new tokens must be between 1 and 4096, got {sp.max_new_tokens}")
    if not 0.0 <= sp.temperature <= 5.0:
        raise RequestError(f"temperature must be between 0 and 5, got {sp.temperature}")
    if not 0.0 < sp.top_p <= 1.0:
        raise RequestError(f"top-p must be in (0, 1], got {sp.top_p}")
    if not 0 <= sp.seed < 2**32:
        raise RequestError(f"seed must be between 0 and 2**32-1, got {sp.seed}")
    return sp


def check_context(models: Models, prompt: str, max_new_tokens: int) -> None:
    """Refuse a prompt that, templated, leaves no room for the answer in a local model's context."""
    for name in ("strong", "tuned", "untuned"):
        role = getattr(models, name)
        if not isinstance(role, Role):
            continue  # a remote model reports its own limit
        limit = getattr(role.model.config, "max_position_embeddings", None)
        if not limit:
            continue
        used = len(role.prompt_ids(prompt))
        if used + max_new_tokens > limit:
            raise RequestError(
                f"the prompt is too long for the {name} model: {used} tokens plus {max_new_tokens} "
                f"new tokens exceed its context of {limit} tokens"
            )


class Runner:
    """Owns the model pool and turns requests into comparisons."""

    def __init__(self, settings: Settings, pool: ModelPool | None = None, store: Any = None) -> None:
        self.settings = settings
        self.pool = pool or ModelPool(settings.device, settings.dtype)
        self.store = store  # a w2s_app.store.Store, or None to keep nothing
        self._shuffle = random.SystemRandom()  # display order must not follow the sampling seed
        self.max_cost = 0  # the app caps a comparison's estimated token work (limits.comparison_cost)
        self.request_seconds = 0.0  # the app stops a comparison running longer than this
        # Engines that answer several prompts at once get one shared loop per (preset, engine):
        # concurrent comparisons then decode in one batch. Others run one comparison at a time.
        self._loops: dict[tuple[str, str], SharedLoop | None] = {}
        self._loops_lock = threading.Lock()
        self._solo = threading.Lock()

    @property
    def concurrency(self) -> int:
        """How many comparisons may run at once (they share the decode loop); 1 without batching."""
        return max(1, self.settings.concurrent) if self.settings.batch_rows > 0 else 1

    def shared_loop(self, preset: Preset, models: Models) -> SharedLoop | None:
        """The preset's shared decode loop, or None when batching is off or its engine cannot join."""
        if self.settings.batch_rows <= 0:
            return None
        key = (preset.name, self.settings.engine)
        with self._loops_lock:
            if key not in self._loops:
                engine = self.engine(models)
                joinable = hasattr(engine, "answer_ready")
                self._loops[key] = SharedLoop(engine, self.settings.batch_rows) if joinable else None
            return self._loops[key]

    def run_methods(
        self,
        preset: Preset,
        models: Models,
        prompt: str,
        methods: list[tuple[str, dict[str, Any]]],
        sp: SamplingParams,
        on_progress: Callable[[int, str, float], None] | None = None,
        on_partial: Callable[[int, str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> list[SearchResult]:
        """Run the methods: in the preset's shared loop when its engine can join, else alone."""
        loop = self.shared_loop(preset, models)
        if loop is not None:
            return loop.run(prompt, methods, sp, on_progress, on_partial=on_partial, cancelled=cancelled)
        with self._solo:
            return run_methods(
                self.engine(models),
                prompt,
                methods,
                sp,
                on_progress,
                on_partial=on_partial,
                cancelled=cancelled,
            )

    def shuffled_positions(self, count: int) -> list[int]:
        """A random display order (position of each method's answer; 0 is 'A')."""
        positions = list(range(count))
        self._shuffle.shuffle(positions)
        return positions

    def preset(self, name: str | None) -> Preset:
        """A preset by name, as a RequestError when unknown."""
        try:
            return self.settings.preset(name)
        except ValueError as exc:
            raise RequestError(str(exc)) from exc

    def models(self, preset: Preset) -> Models:
        """Load (once) the preset's three roles, each as its source kind loads it (backends/factory.py)."""
        ctx = LoadContext(self.pool, self.settings.api_base, self.settings.api_model)
        return factory.load_models(preset, ctx)

    def engine(self, models: Models, name: str | None = None) -> Engine:
        """The engine the roles call for: their sampler (W2S_ENGINE for a local strong model) joined
        with the guide pair's scorer."""
        return factory.build_engine(models, name or self.settings.engine)

    def compare(
        self,
        prompt: str,
        preset_name: str | None,
        method_names: list[str],
        settings: dict[str, Any],
        on_progress: Callable[[int, str, float], None] | None = None,
        voter_id: str | None = None,
        positions: list[int] | None = None,
        on_partial: Callable[[int, str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        client_hash: str | None = None,
    ) -> Comparison:
        """Validate, load models, run every method together; failed methods carry their error.

        With a store attached, the comparison row is written before the run and its generations,
        failed ones included, in one transaction after it; a crash leaves the row 'failed'.
        """
        prompt = clean_prompt(prompt)
        preset = self.preset(preset_name)
        check_bounds(settings)
        methods = build_methods(method_names, settings, preset)
        sp = build_sampling(settings, preset)
        if self.max_cost:
            from .limits import comparison_cost

            cost = comparison_cost(methods, sp.max_new_tokens)
            if cost > self.max_cost:
                raise RequestError(
                    f"this comparison is too large ({cost} tokens of work, the limit is {self.max_cost}): "
                    "lower max new tokens, N, W or K"
                )
        factory.check_engine(preset.strong, self.settings.engine)  # an input error: no row for it
        model_ids = factory.model_labels(preset)
        start = time.perf_counter()
        try:
            models = self.models(preset)
        except RequestError:
            raise  # the request was wrong (a missing API model...): nothing ran, nothing to keep
        except Exception as exc:
            # A model that will not load is an outcome worth keeping: the history shows the failure.
            if self.store is not None:
                shared = {**vars(sp), "methods": [[m, p] for m, p in methods]}
                failed = self.store.create_comparison(
                    prompt, preset.name, shared, voter_id, model_ids, client_hash
                )
                self.store.fail_comparison(failed, f"{type(exc).__name__}: {exc}")
            raise
        load = time.perf_counter() - start
        server = factory.strong_server(models)
        if server:
            check_reachable(server)  # an input error: no row for it
        model_ids = factory.model_labels(preset, models)  # which remote model, never the key
        check_context(models, prompt, sp.max_new_tokens)
        comp_id = None
        if self.store is not None:
            shared = {**vars(sp), "methods": [[m, p] for m, p in methods]}
            comp_id = self.store.create_comparison(
                prompt, preset.name, shared, voter_id, model_ids, client_hash
            )
        if self.request_seconds:
            on_progress = _with_deadline(
                on_progress, time.perf_counter() + self.request_seconds, self.request_seconds
            )
        try:
            results = self.run_methods(
                preset, models, prompt, methods, sp, on_progress, on_partial=on_partial, cancelled=cancelled
            )
        except BaseException as exc:
            if comp_id is not None:
                self.store.fail_comparison(comp_id, f"{type(exc).__name__}: {exc}")
            raise
        for r in results:
            r.text = redact_secrets(r.text)
            r.error = redact_secrets(r.error) if r.error else r.error
        if positions is None or sorted(positions) != list(range(len(results))):
            positions = self.shuffled_positions(len(results))
        comp = Comparison(
            prompt=prompt,
            preset=preset.name,
            sampling=sp,
            results=results,
            seconds=time.perf_counter() - start,
            load_seconds=load,
            models=model_ids,
            id=comp_id,
            positions=positions,
        )
        if comp_id is not None:
            comp.generation_ids = self.store.finish_comparison(comp_id, comp, positions)
        return comp


def _with_deadline(
    on_progress: Callable[[int, str, float], None] | None, deadline: float, seconds: float
) -> Callable[[int, str, float], None]:
    """A progress callback that stops the run (DeadlineExceeded) once the deadline has passed."""

    def report(i: int, text: str, frac: float) -> None:
        if time.perf_counter() > deadline:
            raise DeadlineExceeded(
                f"the comparison took longer than {seconds:g} s and was stopped; "
                "try fewer tokens or methods, or try again when the server is less busy"
            )
        if on_progress:
            on_progress(i, text, frac)

    return report
