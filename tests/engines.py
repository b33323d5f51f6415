"""Engines over loaded roles for tests, built by the composition root's own builders (wiring.model_sources)."""

from __future__ import annotations

from typing import Any

from w2s_app.config import Settings
from w2s_app.contracts import Answer, Asked, SamplingParams
from w2s_app.search import answer_all
from w2s_app.wiring import engine_for

# W2S_THREADS as the app reads it (conftest sets one thread per test process).
THREADS = Settings.from_env().threads


def fast(models: Any, scorer: Any = None) -> Any:
    """The batched transformers engine `fast` with the cached scorer or `scorer`."""
    return engine_for(models, "fast", scorer, THREADS)


def reference(models: Any, scorer: Any = None) -> Any:
    """The plain oracle."""
    return engine_for(models, "reference", scorer, THREADS)


def llamacpp(models: Any, scorer: Any = None) -> Any:
    """The strong model in llama.cpp (GGUF sources)."""
    return engine_for(models, "llamacpp", scorer, THREADS)


def handle(engine: Any, prompt: str, sp: SamplingParams, requests: list[Any]) -> list[Answer]:
    """Every request answered."""
    return answer_all(engine, prompt, sp, requests)


def handle_ready(engine: Any, prompt: str, sp: SamplingParams, requests: list[Any]) -> list[Answer | None]:
    """What the engine answers now (None: still in work)."""
    return engine.answer_ready([Asked(prompt, sp, r) for r in requests])


def compare(
    runner: Any, prompt: str, preset: str, methods: list[str], settings: dict | None = None, **kw: Any
) -> Any:
    """runner.compare of one request; keyword arguments are CompareRequest's or compare's own."""
    from w2s_app.runner import CompareRequest

    callbacks = {k: kw.pop(k) for k in ("on_progress", "on_partial", "cancelled") if k in kw}
    return runner.compare(CompareRequest(prompt, preset, methods, settings or {}, **kw), **callbacks)


def score_streams(scorer: Any, prompt: str, streams: list[Any]) -> tuple[list[float], Any]:
    """One score per stream and the counts, from any scorer; its error is raised."""
    from w2s_app.contracts import ScoreRequest

    (answer,) = scorer.score_many([(prompt, ScoreRequest(tuple(streams)))])
    if answer.error is not None:
        raise answer.error
    return answer.value, answer.counts
