"""Runs one comparison: loads the preset's models, runs the methods together, reports progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .backends.local import ModelPool
from .backends.roles import Role
from .config import Preset, Settings
from .search import Models, ReferenceEngine, SamplingParams, SearchResult, method_params, run_methods
from .search.engine import Engine
from .search.fast import FastEngine

ENGINES: dict[str, Callable[[Models], Engine]] = {"reference": ReferenceEngine, "fast": FastEngine}
MAX_PROMPT_CHARS = 20_000


class RequestError(ValueError):
    """A comparison request is invalid; the message is safe to show to a user."""


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


def clean_prompt(prompt: Any) -> str:
    """Check a prompt: text, not blank, no NUL or control characters, within a sane length."""
    if not isinstance(prompt, str):
        raise RequestError("the prompt must be text")
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
        )
    except (TypeError, ValueError) as exc:
        raise RequestError(f"sampling settings must be numbers: {exc}") from exc
    if not 1 <= sp.max_new_tokens <= 4096:
        raise RequestError(f"max new tokens must be between 1 and 4096, got {sp.max_new_tokens}")
    if not 0.0 <= sp.temperature <= 5.0:
        raise RequestError(f"temperature must be between 0 and 5, got {sp.temperature}")
    if not 0.0 < sp.top_p <= 1.0:
        raise RequestError(f"top-p must be in (0, 1], got {sp.top_p}")
    if not 0 <= sp.seed < 2**32:
        raise RequestError(f"seed must be between 0 and 2**32-1, got {sp.seed}")
    return sp


class Runner:
    """Owns the model pool and turns requests into comparisons."""

    def __init__(self, settings: Settings, pool: ModelPool | None = None) -> None:
        self.settings = settings
        self.pool = pool or ModelPool(settings.device, settings.dtype)

    def preset(self, name: str | None) -> Preset:
        """A preset by name, as a RequestError when unknown."""
        try:
            return self.settings.preset(name)
        except ValueError as exc:
            raise RequestError(str(exc)) from exc

    def models(self, preset: Preset) -> Models:
        """Load (once) the preset's three roles."""
        return Models(
            strong=Role(preset.strong, self.pool.get(preset.strong.source)),
            tuned=Role(preset.tuned, self.pool.get(preset.tuned.source)),
            untuned=Role(preset.untuned, self.pool.get(preset.untuned.source)),
        )

    def engine(self, models: Models, name: str | None = None) -> Engine:
        """The configured engine over the models."""
        name = name or self.settings.engine
        if name not in ENGINES:
            raise RequestError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
        return ENGINES[name](models)

    def compare(
        self,
        prompt: str,
        preset_name: str | None,
        method_names: list[str],
        settings: dict[str, Any],
        on_progress: Callable[[int, str, float], None] | None = None,
    ) -> Comparison:
        """Validate, load models, run every method together; failed methods carry their error."""
        prompt = clean_prompt(prompt)
        preset = self.preset(preset_name)
        methods = build_methods(method_names, settings, preset)
        sp = build_sampling(settings, preset)
        start = time.perf_counter()
        models = self.models(preset)
        load = time.perf_counter() - start
        results = run_methods(self.engine(models), prompt, methods, sp, on_progress)
        return Comparison(
            prompt=prompt,
            preset=preset.name,
            sampling=sp,
            results=results,
            seconds=time.perf_counter() - start,
            load_seconds=load,
            models={
                "strong": preset.strong.source,
                "tuned": preset.tuned.source,
                "untuned": preset.untuned.source,
            },
        )
