"""Run several methods on one prompt through one engine, interleaving their requests."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .engine import Engine
from .methods import METHODS, MethodOutput
from .sampling import prompt_seed
from .types import Progress, SamplingParams, SearchResult

ProgressFn = Callable[[int, str, float], None]


@dataclass
class _Live:
    index: int
    gen: Any
    result: SearchResult
    pending: Any = None


def run_methods(
    engine: Engine,
    prompt: str,
    methods: list[tuple[str, dict[str, Any]]],
    sp: SamplingParams,
    on_progress: ProgressFn | None = None,
) -> list[SearchResult]:
    """Run each (method, params) on the prompt; a failing method records its error, the others go on."""
    start = time.perf_counter()
    # Methods and engines key their noise by this per-prompt seed; the caller keeps the user's seed.
    sp = replace(sp, seed=prompt_seed(sp.seed, prompt))
    results = [SearchResult(method=m, params=dict(p)) for m, p in methods]
    live: list[_Live] = []
    for i, (name, params) in enumerate(methods):
        item = _Live(i, METHODS[name].run(params, sp), results[i])
        _advance(item, None, None, start)
        if item.pending is not None:
            live.append(item)
    while live:
        # Progress is answered at once; everything else goes to the engine in one batch, so an
        # engine that can merge requests (the fast one) runs every method's streams together.
        waiting = []
        for item in live:
            while isinstance(item.pending, Progress):
                if on_progress:
                    on_progress(item.index, item.pending.text, item.pending.fraction)
                _advance(item, None, None, start)
            if item.pending is not None:
                waiting.append(item)
        if not waiting:
            break
        # An engine with handle_ready may answer some requests later (None): those methods wait
        # while the others move on, so short search chunks need not wait for long samples.
        ask = getattr(engine, "handle_ready", None) or engine.handle
        try:
            answers = ask(prompt, sp, [item.pending for item in waiting])
            if all(ans is None for ans in answers):
                raise RuntimeError("the engine answered none of the pending requests")
        except Exception as exc:
            for item in waiting:
                _advance(item, None, exc, start)
        else:
            for item, ans in zip(waiting, answers):
                if ans is None:
                    continue
                counts = item.result.counts
                for key, value in vars(ans.counts).items():
                    setattr(counts, key, getattr(counts, key) + value)
                _advance(item, ans.value, ans.error, start)
        live = [item for item in waiting if item.pending is not None]
    for r in results:
        if on_progress and r.ok:
            on_progress(results.index(r), r.text, 1.0)
    return results


def _advance(item: _Live, value: Any, error: BaseException | None, start: float) -> None:
    """Send an answer (or throw an error) into a method and record its next request or its result."""
    try:
        if error is not None:
            item.pending = item.gen.throw(error)
        elif inspect.getgeneratorstate(item.gen) == inspect.GEN_CREATED:
            item.pending = next(item.gen)
        else:
            item.pending = item.gen.send(value)
    except StopIteration as stop:
        out: MethodOutput = stop.value
        item.pending = None
        item.result.text, item.result.score, item.result.eos = out.text, out.score, out.eos
        item.result.trace = out.trace
        item.result.seconds = time.perf_counter() - start
    except Exception as exc:
        item.pending = None
        item.result.error = f"{type(exc).__name__}: {exc}"
        item.result.seconds = time.perf_counter() - start
