"""Run several methods on one prompt through one engine, interleaving their requests."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..contracts import (
    ROOT,
    Answer,
    Asked,
    Cancelled,
    Engine,
    Hooks,
    Progress,
    SampleRequest,
    SamplingParams,
    SearchResult,
)
from ..contracts.seeds import method_seed, prompt_seed
from ..contracts.stops import find_stop, settled_text, stop_start_length
from .methods import METHODS, MethodOutput, method_label

ProgressFn = Callable[[int, str, float], None]
PartialFn = Callable[[int, str], None]


@dataclass
class _Live:
    index: int
    gen: Any
    result: SearchResult
    pending: Any = None


class MethodsRun:
    """One prompt's methods as live generators: the requests they wait on, and their results.

    `run_methods` drives one of these through an engine; a shared loop drives many at once.
    `client_stops` are the caller's own stop strings (a service request's `stop`): a method whose
    settled text reaches one has its answer decided, so its search ends there.
    """

    def __init__(
        self,
        prompt: str,
        methods: list[tuple[str, dict[str, Any]]],
        sp: SamplingParams,
        stops: tuple[str, ...] = (),
        on_progress: ProgressFn | None = None,
        on_partial: PartialFn | None = None,
        client_stops: tuple[str, ...] = (),
    ) -> None:
        self.start = time.perf_counter()
        self.prompt = prompt
        # Methods and engines key their noise by this per-prompt seed; the caller keeps the user's seed.
        self.sp = replace(sp, seed=prompt_seed(sp.seed, prompt))
        self.results = [SearchResult(method=m, params=dict(p), label=method_label(m, p)) for m, p in methods]
        self.on_progress = on_progress
        self.client_stops = tuple(s for s in client_stops if s)
        self.partial = _Partials(on_partial, stops, track=bool(self.client_stops))
        self.watched: dict[int, int] = {}  # id(whole-answer sample request) -> method index
        # A method ended while the engine was still decoding its request: the engine may give it up.
        self.dropped = False
        self.live: list[_Live] = []
        self._items: dict[int, _Live] = {}
        for i, (name, params) in enumerate(methods):
            # Independent noise: the method and its parameters enter the key (see sampling.method_seed).
            own = self.sp
            if self.sp.noise != "shared":
                own = replace(self.sp, seed=method_seed(self.sp.seed, name, params))
            item = _Live(i, METHODS[name].run(params, own), self.results[i])
            self._items[i] = item
            _advance(item, None, None, self.start)
            if item.pending is not None:
                self.live.append(item)

    @property
    def watching_text(self) -> bool:
        """True when the engine's partial text is wanted (a caller streams it or a client stop ends it)."""
        return self.partial.callback is not None or bool(self.client_stops)

    def all_ended(self) -> bool:
        """True when no method waits on the engine any more (they finished or ended early)."""
        return all(item.pending is None for item in self.live)

    def waiting(self) -> list[_Live]:
        """Answer progress reports at once; the methods left wait on the engine (none: all done)."""
        waiting = []
        self.dropped = False  # what ended is no longer asked for: the engine lets it go now
        for item in self.live:
            while isinstance(item.pending, Progress):
                if self.on_progress:
                    self.on_progress(item.index, item.pending.text, item.pending.fraction)
                self._settle(item, item.pending.settled)
                if item.pending is not None:
                    _advance(item, None, None, self.start)
            if item.pending is None:
                continue
            waiting.append(item)
            req = item.pending
            # A single sample from the prompt over the whole budget is the method's answer itself
            # (baseline): its text may be streamed token by token.
            if (
                isinstance(req, SampleRequest)
                and req.parents == (ROOT,)
                and req.max_new >= self.sp.max_new_tokens
            ):
                self.watched[id(req)] = item.index
        self.live = waiting
        return waiting

    def deliver(self, items: list[_Live], answers: list[Answer | None]) -> None:
        """Send the engine's answers into the methods (None: not ready, the method waits on)."""
        for item, ans in zip(items, answers):
            if ans is None or item.pending is None:  # not ready, or the method ended early meanwhile
                continue
            counts = item.result.counts
            for key, value in vars(ans.counts).items():
                setattr(counts, key, getattr(counts, key) + value)
            _advance(item, ans.value, ans.error, self.start)

    def fail(self, items: list[_Live], exc: BaseException) -> None:
        """The engine failed these requests as a whole: each method gets the error."""
        for item in items:
            if item.pending is not None:  # a method that ended early keeps its answer
                _advance(item, None, exc, self.start)

    def on_rows(self, req: Any, texts: list[str]) -> None:
        """The engine's partial-text hook: a watched request's text so far."""
        if id(req) in self.watched:
            item = self._items[self.watched[id(req)]]
            if item.pending is req:
                self._settle(item, texts[0])
                self.dropped = self.dropped or item.pending is None

    def _settle(self, item: _Live, text: str) -> None:
        """A method's answer grew: report its settled text; a client stop in it ends the method."""
        settled = self.partial.update(item.index, text)
        if self.client_stops and stop_decided(settled, self.client_stops):
            item.gen.close()
            item.pending = None
            item.result.text, item.result.eos = settled, False
            item.result.seconds = time.perf_counter() - self.start

    def finish(self) -> list[SearchResult]:
        """Final progress and settled text of every answer; the results."""
        for i, r in enumerate(self.results):
            if self.on_progress and r.ok:
                self.on_progress(i, r.text, 1.0)
            if r.ok:
                self.partial.finish(i, r.text)
        return self.results


def run_methods(
    engine: Engine,
    prompt: str,
    methods: list[tuple[str, dict[str, Any]]],
    sp: SamplingParams,
    on_progress: ProgressFn | None = None,
    on_partial: PartialFn | None = None,
    cancelled: Callable[[], bool] | None = None,
    stops: tuple[str, ...] = (),
) -> list[SearchResult]:
    """Run each (method, params) on the prompt; a failing method records its error, the others go on.

    `on_partial(i, text)` receives method i's settled answer as it grows: text that the method will
    not withdraw (the final answer starts with it), so a client may stream it. `cancelled()` is
    polled between engine steps; when it returns True the run stops with `Cancelled`. `stops` are
    the caller's stop strings: a method whose settled answer reaches one ends there, its text kept
    whole (the caller cuts it), and the engine stops decoding once every method has ended.
    """
    run = MethodsRun(prompt, methods, sp, engine.stops, on_progress, on_partial, stops)

    def stop_engine() -> bool:
        """The caller stopped the run, or every method ended at a client stop: nothing to decode."""
        return (cancelled is not None and cancelled()) or run.all_ended()

    engine.hooks = Hooks(partial=run.on_rows if run.watching_text else None, cancelled=stop_engine)
    while True:
        if cancelled is not None and cancelled():
            raise Cancelled("the run was cancelled")
        # Progress is answered at once; everything else goes to the engine in one batch, so an
        # engine that can merge requests (the fast one) runs every method's streams together.
        waiting = run.waiting()
        if not waiting:
            break
        # The engine may answer some requests later (None): those methods wait while the others
        # move on, so short search chunks need not wait for long samples.
        try:
            answers = engine.answer_ready([Asked(run.prompt, run.sp, item.pending) for item in waiting])
            if all(ans is None for ans in answers):
                raise RuntimeError("the engine answered none of the pending requests")
        except Cancelled:
            if not run.all_ended():
                raise
            # Every method ended at a client stop while the engine decoded: their answers stand.
        except Exception as exc:
            run.fail(waiting, exc)
        else:
            run.deliver(waiting, answers)
    return run.finish()


class _Partials:
    """Per-method settled text, reported only when it grows (never withdrawn)."""

    def __init__(self, callback: PartialFn | None, stops: tuple[str, ...], track: bool = False) -> None:
        self.callback = callback
        self.stops = stops
        self.track = track  # kept even without a callback: client stops are looked for in it
        self.sent: dict[int, str] = {}

    def update(self, index: int, text: str) -> str:
        """Report the settled part of a growing answer if it extends what was sent; the settled text."""
        if (self.callback is None and not self.track) or not text:
            return self.sent.get(index, "")
        self._send(index, settled_text(text, self.stops))
        return self.sent.get(index, "")

    def finish(self, index: int, text: str) -> None:
        """The final answer: everything is settled."""
        if self.callback is not None:
            self._send(index, text)

    def _send(self, index: int, text: str) -> None:
        before = self.sent.get(index, "")
        if len(text) > len(before) and text.startswith(before):
            self.sent[index] = text
            if self.callback is not None:
                self.callback(index, text)


def stop_decided(settled: str, stops: tuple[str, ...]) -> bool:
    """True when stop strings end an answer that starts with `settled`, wherever it goes on.

    One must follow some non-blank text (`find_stop`'s rule), and no stop that would begin earlier
    may still be being written: the answer cut at its first stop is then this text cut at it.
    """
    if find_stop(settled, stops) is None:
        return False
    first = min(i for i in (settled.find(s) for s in stops) if i >= 0)
    return first <= len(settled) - stop_start_length(settled, stops)


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
