"""Run several methods on one prompt through one engine, interleaving their requests."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .engine import Cancelled, Engine, Hooks
from .methods import METHODS, MethodOutput
from .sampling import method_seed, prompt_seed, settled_text
from .types import ROOT, Progress, SampleRequest, SamplingParams, SearchResult

ProgressFn = Callable[[int, str, float], None]
PartialFn = Callable[[int, str], None]


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
    on_partial: PartialFn | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> list[SearchResult]:
    """Run each (method, params) on the prompt; a failing method records its error, the others go on.

    `on_partial(i, text)` receives method i's settled answer as it grows: text that the method will
    not withdraw (the final answer starts with it), so a client may stream it. `cancelled()` is
    polled between engine steps; when it returns True the run stops with `Cancelled`.
    """
    start = time.perf_counter()
    # Methods and engines key their noise by this per-prompt seed; the caller keeps the user's seed.
    sp = replace(sp, seed=prompt_seed(sp.seed, prompt))
    results = [SearchResult(method=m, params=dict(p)) for m, p in methods]
    stops = tuple(getattr(getattr(engine.models.strong, "spec", None), "stop", ()) or ())
    partial = _Partials(on_partial, stops)
    watched: dict[int, int] = {}  # id(whole-answer sample request) -> method index
    live: list[_Live] = []
    for i, (name, params) in enumerate(methods):
        # Independent noise: the method and its parameters enter the key (see sampling.method_seed).
        own = sp if sp.noise == "shared" else replace(sp, seed=method_seed(sp.seed, name, params))
        item = _Live(i, METHODS[name].run(params, own), results[i])
        _advance(item, None, None, start)
        if item.pending is not None:
            live.append(item)

    def on_rows(req: SampleRequest, texts: list[str]) -> None:
        if id(req) in watched:
            partial.update(watched[id(req)], texts[0])

    engine.hooks = Hooks(partial=on_rows if on_partial else None, cancelled=cancelled)
    while live:
        if cancelled is not None and cancelled():
            raise Cancelled("the run was cancelled")
        # Progress is answered at once; everything else goes to the engine in one batch, so an
        # engine that can merge requests (the fast one) runs every method's streams together.
        waiting = []
        for item in live:
            while isinstance(item.pending, Progress):
                if on_progress:
                    on_progress(item.index, item.pending.text, item.pending.fraction)
                partial.update(item.index, item.pending.settled)
                _advance(item, None, None, start)
            if item.pending is not None:
                waiting.append(item)
                req = item.pending
                # A single sample from the prompt over the whole budget is the method's answer
                # itself (baseline): its text may be streamed token by token.
                if (
                    isinstance(req, SampleRequest)
                    and req.parents == (ROOT,)
                    and req.max_new >= sp.max_new_tokens
                ):
                    watched[id(req)] = item.index
        if not waiting:
            break
        # An engine with handle_ready may answer some requests later (None): those methods wait
        # while the others move on, so short search chunks need not wait for long samples.
        ask = getattr(engine, "handle_ready", None) or engine.handle
        try:
            answers = ask(prompt, sp, [item.pending for item in waiting])
            if all(ans is None for ans in answers):
                raise RuntimeError("the engine answered none of the pending requests")
        except Cancelled:
            raise
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
    for i, r in enumerate(results):
        if on_progress and r.ok:
            on_progress(i, r.text, 1.0)
        if r.ok:
            partial.finish(i, r.text)
    return results


class _Partials:
    """Per-method settled text, reported only when it grows (never withdrawn)."""

    def __init__(self, callback: PartialFn | None, stops: tuple[str, ...]) -> None:
        self.callback = callback
        self.stops = stops
        self.sent: dict[int, str] = {}

    def update(self, index: int, text: str) -> None:
        """Report the settled part of a growing answer if it extends what was sent."""
        if self.callback is None or not text:
            return
        self._send(index, settled_text(text, self.stops))

    def finish(self, index: int, text: str) -> None:
        """The final answer: everything is settled."""
        if self.callback is not None:
            self._send(index, text)

    def _send(self, index: int, text: str) -> None:
        before = self.sent.get(index, "")
        if len(text) > len(before) and text.startswith(before):
            self.sent[index] = text
            self.callback(index, text)


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
