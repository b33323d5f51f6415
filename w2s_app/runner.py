"""Runs comparisons: checks a request, runs its methods on the preset's engine, persists the outcome.

Concurrent comparisons on an engine that can join them share one decoding loop; others take turns.
The runner knows presets, settings and the store; what loads models and builds engines is handed to
it (`Engines`, made by the composition root in wiring/).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from . import options
from .config import OPENAI_API_KEY, ConfigError, Preset, Settings, read_key
from .contracts import Cancelled, Engine, SamplingParams, SearchResult
from .errors import RequestError
from .search import METHODS, SharedLoop, comparison_cost, method_params, run_methods

MAX_PROMPT_CHARS = 20_000

ProgressFn = Callable[[int, str, float], None]
PartialFn = Callable[[int, str], None]


class DeadlineExceeded(RequestError):
    """A comparison ran past the per-request deadline and was stopped."""


class Loaded(Protocol):
    """A loaded preset: its engine and the checks a comparison needs (wiring.engines.LoadedPreset)."""

    engine: Engine
    labels: dict[str, str]

    def check_ready(self) -> None: ...
    def check_context(self, prompt: str, max_new_tokens: int) -> None: ...
    def count_tokens(self, prompt: str, text: str) -> tuple[int, int] | None: ...


class ComparisonStore(Protocol):
    """What the runner writes a comparison's life through (store.comparisons.ComparisonRecords)."""

    def create_comparison(
        self, prompt: str, preset: str, settings: dict[str, Any], voter_id: str | None,
        models: dict[str, Any], client_hash: str | None = None,
    ) -> int: ...  # fmt: skip
    def public_id(self, comparison_id: int) -> str: ...
    def finish_comparison(self, comparison_id: int, comp: Any, positions: list[int]) -> list[int]: ...
    def fail_comparison(self, comparison_id: int, error: str) -> None: ...


class Engines(Protocol):
    """Where the runner gets loaded presets (wiring.engines.PresetEngines)."""

    def check(self, preset: Preset) -> None: ...
    def labels(self, preset: Preset) -> dict[str, str]: ...
    def load(self, preset: Preset) -> Loaded: ...


@dataclass(frozen=True)
class RequestLimits:
    """What one comparison from the page or the service may cost (0 = no limit). The CLI has none."""

    max_cost: int = 0  # estimated token work (search.comparison_cost)
    seconds: float = 0.0  # stopped when it runs longer
    # When several comparisons share one deadline (a service request's choices): the time.perf_counter()
    # at which they all stop. None: `seconds` from this comparison's start.
    deadline: float | None = None


@dataclass
class CompareRequest:
    """One prompt to answer with several methods, and who asks."""

    prompt: Any
    preset: str | None
    methods: list[str]
    settings: dict[str, Any] = field(default_factory=dict)  # given values by option name; None: default
    voter_id: str | None = None
    client_hash: str | None = None
    positions: list[int] | None = None  # display position of each method's answer (0 = A)
    limits: RequestLimits | None = None
    seed_by: str | None = None  # "server" (drawn for this comparison) or "caller": stored, decides blindness
    # The caller's stop strings (the service's `stop`): a method's search ends once its settled text
    # reaches one, the text kept whole for the caller to cut. The page gives none.
    stops: tuple[str, ...] = ()


@dataclass
class Plan:
    """A request checked before anything loads: what will run."""

    prompt: str
    preset: Preset
    methods: list[tuple[str, dict[str, Any]]]
    sampling: SamplingParams
    cost: int

    def with_seed(self, seed: int) -> Plan:
        """The same plan drawing other noise (a service request's choice j: seed + j)."""
        return replace(self, sampling=replace(self.sampling, seed=seed))


@dataclass
class ComparisonResult:
    """One prompt answered by several methods."""

    prompt: str
    preset: str
    sampling: SamplingParams
    results: list[SearchResult]
    seconds: float
    load_seconds: float = 0.0
    models: dict[str, str] = field(default_factory=dict)
    id: int | None = None  # database id, when a store is attached
    public_id: str | None = None
    generation_ids: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # display position of each result (0 = A)


def clean_prompt(prompt: Any) -> str:
    """Check a prompt: text, not blank, no NUL or control characters, within a sane length."""
    if not isinstance(prompt, str):
        raise options.OptionError("prompt", "the prompt must be text")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in prompt):  # an invalid byte, as Python reads argv
        raise options.OptionError(
            "prompt", "the prompt is not valid text (it has an invalid byte); save or type it as UTF-8"
        )
    cleaned = "".join(c for c in prompt if c in "\n\t" or c.isprintable() or ord(c) > 127)
    cleaned = cleaned.replace("\x00", "").strip()
    # Separators (Z*), controls (Cc) and format characters (Cf: zero-width spaces, U+FEFF, U+2060)
    # show nothing: a prompt of only those is as empty as one of spaces.
    import unicodedata

    if all(unicodedata.category(c)[0] == "Z" or unicodedata.category(c) in ("Cc", "Cf") for c in cleaned):
        raise options.OptionError("prompt", "the prompt is empty; type a question or instruction")
    if len(cleaned) > MAX_PROMPT_CHARS:
        raise options.OptionError(
            "prompt", f"the prompt has {len(cleaned)} characters; the limit is {MAX_PROMPT_CHARS}"
        )
    return cleaned


def build_methods(names: list[str], values: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Method names plus their settings, from resolved values (options.resolve)."""
    if not names:
        raise options.OptionError("methods", "choose at least one method")
    # An entry is a method ('w2s': the comparison's settings) or an arm fixing some ('w2s W4 K4 L5').
    out = []
    for name in names:
        params = method_params(name, values)  # refuses an unknown method or a bad arm first
        out.append((name.split()[0], params))
    if len({(n, tuple(sorted(p.items()))) for n, p in out}) != len(out):
        raise options.OptionError("methods", "the same method configuration is listed twice")
    return out


def redact_secrets(text: str) -> str:
    """The API key never lands in the database, even when a server echoes it in an answer."""
    key = read_key(OPENAI_API_KEY)  # read now: keys are never held in Settings
    return text.replace(key, "[redacted]") if key and len(key) >= 8 and key in text else text


class Runner:
    """Turns requests into stored comparisons, on engines the composition root provides."""

    def __init__(
        self,
        settings: Settings,
        engines: Engines,
        store: ComparisonStore | None = None,
        wrap: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
        after_stored: Callable[[int, Preset], None] | None = None,
    ) -> None:
        """`store` keeps every comparison (None: nothing kept); `wrap` wraps model work (ZeroGPU);
        `after_stored(comparison id, preset)` hears of each stored comparison (the gold rewards)."""
        self.after_stored = after_stored
        self.settings = settings
        self.engines = engines
        self.store = store
        self._shuffle = random.SystemRandom()  # display order must not follow the sampling seed
        self._loops: dict[int, SharedLoop] = {}  # id(engine) -> its shared loop
        self._solo: dict[int, threading.Lock] = {}  # id(engine) -> its turn, for engines that cannot join
        self._lock = threading.Lock()
        self._run = wrap(self._run_methods) if wrap else self._run_methods

    @property
    def concurrency(self) -> int:
        """How many comparisons may run at once (they share the decode loop); 1 without batching."""
        return max(1, self.settings.concurrent) if self.settings.batch_rows > 0 else 1

    def preset(self, name: str | None) -> Preset:
        """A preset by name, as a RequestError naming the known ones."""
        try:
            return self.settings.preset(name)
        except ConfigError as exc:
            raise options.OptionError("preset", str(exc)) from exc

    def shuffled_positions(self, count: int) -> list[int]:
        """A random display order (position of each method's answer; 0 is 'A')."""
        positions = list(range(count))
        self._shuffle.shuffle(positions)
        return positions

    def plan(self, request: CompareRequest) -> Plan:
        """Check everything that can be checked before models load; an OptionError names the field."""
        prompt = clean_prompt(request.prompt)
        preset = self.preset(request.preset)
        values = options.resolve(request.settings, preset.defaults)
        methods = build_methods(list(request.methods), values)
        sp = SamplingParams.from_values(values)
        cost = comparison_cost(methods, sp.max_new_tokens)
        limits = request.limits
        if limits is not None and limits.max_cost and cost > limits.max_cost:
            raise options.OptionError(
                "max_cost",
                f"this comparison is too large ({cost} tokens of work, the limit is {limits.max_cost}): "
                "lower max new tokens, N, W or K",
            )
        self.engines.check(preset)  # an input error: no row for it
        return Plan(prompt, preset, methods, sp, cost)

    def compare(
        self,
        request: CompareRequest,
        on_progress: ProgressFn | None = None,
        on_partial: PartialFn | None = None,
        cancelled: Callable[[], bool] | None = None,
        plan: Plan | None = None,
    ) -> ComparisonResult:
        """Check, load models, run every method together; failed methods carry their error.

        With a store attached, the comparison row is written before the run and its generations,
        failed ones included, in one transaction after it; a crash leaves the row 'running' (the next
        start marks it failed) and an error leaves it 'failed'.
        """
        plan = plan or self.plan(request)  # a door that checked the request hands its plan on
        preset, sp, methods = plan.preset, plan.sampling, plan.methods
        start = time.perf_counter()
        shared = {**vars(sp), "methods": [[m, p] for m, p in methods]}
        if request.seed_by is not None:
            shared["seed_by"] = request.seed_by
        try:
            loaded = self.engines.load(preset)
        except RequestError:
            raise  # the request was wrong (a missing API model...): nothing ran, nothing to keep
        except Exception as exc:
            # A model that will not load is an outcome worth keeping: the history shows the failure.
            if self.store is not None:
                failed = self.store.create_comparison(
                    plan.prompt, preset.name, shared, request.voter_id, self.engines.labels(preset),
                    request.client_hash,
                )  # fmt: skip
                self.store.fail_comparison(failed, f"{type(exc).__name__}: {exc}")
            raise
        load = time.perf_counter() - start
        loaded.check_ready()  # input errors: no row for them
        loaded.check_context(plan.prompt, sp.max_new_tokens)
        comp_id = public_id = None
        if self.store is not None:
            comp_id = self.store.create_comparison(
                plan.prompt, preset.name, shared, request.voter_id, loaded.labels, request.client_hash
            )
            public_id = self.store.public_id(comp_id)
        limits = request.limits or RequestLimits()
        deadline = limits.deadline
        if deadline is None and limits.seconds:
            deadline = time.perf_counter() + limits.seconds

        def stop() -> bool:
            """Polled between decoding steps: the caller left, or the deadline passed."""
            over = deadline is not None and time.perf_counter() > deadline
            return over or (cancelled is not None and cancelled())

        try:
            try:
                results = self._run(
                    loaded.engine, plan.prompt, methods, sp, on_progress, on_partial, stop, request.stops
                )
            except Cancelled:
                if deadline is not None and time.perf_counter() > deadline:
                    raise DeadlineExceeded(
                        f"the comparison took longer than {limits.seconds:g} s and was stopped; try fewer "
                        "tokens or methods, or try again when the server is less busy"
                    ) from None
                raise
        except BaseException as exc:
            if comp_id is not None:
                self.store.fail_comparison(comp_id, f"{type(exc).__name__}: {exc}")
            raise
        for r in results:
            r.text = redact_secrets(r.text)
            r.error = redact_secrets(r.error) if r.error else r.error
        positions = request.positions
        if positions is None or sorted(positions) != list(range(len(results))):
            positions = self.shuffled_positions(len(results))
        comp = ComparisonResult(
            prompt=plan.prompt,
            preset=preset.name,
            sampling=sp,
            results=results,
            seconds=time.perf_counter() - start,
            load_seconds=load,
            models=loaded.labels,
            id=comp_id,
            public_id=public_id,
            positions=positions,
        )
        if comp_id is not None:
            comp.generation_ids = self.store.finish_comparison(comp_id, comp, positions)
            if self.after_stored is not None:
                self.after_stored(comp_id, preset)  # queues work for later: never delays the answer
        return comp

    def count_tokens(self, preset: str, prompt: str, text: str) -> tuple[int, int] | None:
        """The strong model's tokens of a templated prompt and an answer (None: a server counts them)."""
        return self.engines.load(self.preset(preset)).count_tokens(prompt, text)

    def _run_methods(
        self,
        engine: Engine,
        prompt: str,
        methods: list[tuple[str, dict[str, Any]]],
        sp: SamplingParams,
        on_progress: ProgressFn | None,
        on_partial: PartialFn | None,
        cancelled: Callable[[], bool] | None,
        stops: tuple[str, ...] = (),
    ) -> list[SearchResult]:
        """Run the methods: in the engine's shared loop when it can join comparisons, else on its turn."""
        loop = self._loop(engine)
        if loop is not None:
            return loop.run(
                prompt, methods, sp, on_progress, on_partial=on_partial, cancelled=cancelled, stops=stops
            )
        with self._lock:
            turn = self._solo.setdefault(id(engine), threading.Lock())
        with turn:
            return run_methods(engine, prompt, methods, sp, on_progress, on_partial, cancelled, stops)

    def _loop(self, engine: Engine) -> SharedLoop | None:
        """The engine's shared decode loop, or None when batching is off or the engine cannot join."""
        if self.settings.batch_rows <= 0 or not engine.abilities.joinable:
            return None
        with self._lock:
            if id(engine) not in self._loops:
                self._loops[id(engine)] = SharedLoop(engine, self.settings.batch_rows)
            return self._loops[id(engine)]


__all__ = [
    "METHODS",
    "CompareRequest",
    "ComparisonResult",
    "DeadlineExceeded",
    "Plan",
    "RequestError",
    "RequestLimits",
    "Runner",
    "build_methods",
    "clean_prompt",
]
