"""Continuous batching across comparisons: one engine loop serves every comparison running.

Each comparison submitted from its own thread joins the running loop at the engine's next decode
step (the engine's interrupt hook lets it in), its streams decode in the same batch as everyone
else's, and it leaves when its methods are done. The noise of every token is keyed by (seed,
slot, position), so a comparison's texts do not depend on what runs beside it: on a batch-
invariant sampler (the torch one at float32) they equal what it gives alone.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ..contracts import Answer, Asked, Cancelled, Engine, Hooks, SamplingParams, SearchResult
from .driver import MethodsRun, PartialFn, ProgressFn
from .methods import rows_needed


class _Submitted:
    """A submitted comparison: its arguments, then its live run, then its outcome."""

    def __init__(
        self,
        args: tuple[str, list[tuple[str, dict[str, Any]]], SamplingParams],
        on_progress: ProgressFn | None,
        on_partial: PartialFn | None,
        cancelled: Callable[[], bool] | None,
        stops: tuple[str, ...] = (),
    ) -> None:
        self.args = args
        self.stops = stops
        self.rows = rows_needed(args[1])
        self.on_progress = on_progress
        self.on_partial = on_partial
        self.cancelled = cancelled
        self.run: MethodsRun | None = None
        self.results: list[SearchResult] = []
        self.error: BaseException | None = None
        self.done = threading.Event()


class SharedLoop:
    """Runs the comparisons of many threads in one engine loop, up to `max_rows` streams at once.

    The engine must be joinable (`abilities.joinable`: it answers requests of several prompts in one
    call, as `GuidedEngine` does). Comparisons are admitted first come, first served while their streams
    fit; a comparison larger than `max_rows` runs when it is alone.
    """

    def __init__(self, engine: Engine, max_rows: int = 64) -> None:
        if not engine.abilities.joinable:
            raise ValueError(f"{type(engine).__name__} cannot join comparisons into one loop")
        self.engine = engine
        self.max_rows = max_rows
        self._cond = threading.Condition()
        self._queue: deque[_Submitted] = deque()
        self._active: list[_Submitted] = []
        self._owner: dict[int, _Submitted] = {}  # id(sample request) -> its comparison, for partial text
        self._thread: threading.Thread | None = None
        self.peak_rows = 0  # most streams admitted at once (for benchmarks and tests)

    def run(
        self,
        prompt: str,
        methods: list[tuple[str, dict[str, Any]]],
        sp: SamplingParams,
        on_progress: ProgressFn | None = None,
        on_partial: PartialFn | None = None,
        cancelled: Callable[[], bool] | None = None,
        stops: tuple[str, ...] = (),
    ) -> list[SearchResult]:
        """As `run_methods`, sharing the engine's decode steps with every other comparison running.

        A comparison whose methods all ended at the caller's `stops` leaves the loop with its results.
        """
        job = _Submitted((prompt, methods, sp), on_progress, on_partial, cancelled, stops)
        with self._cond:
            self._queue.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="w2s-shared-loop", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.results

    # ---- the loop's thread ------------------------------------------------------------------

    def _work(self) -> None:
        """Admit, ask, deliver, until no comparison is left (the next `run` starts a new thread)."""
        try:
            while True:
                with self._cond:
                    self._admit()
                    if not self._active:
                        self._thread = None
                        return
                self._round()
        except BaseException as exc:  # a bug in the loop itself: fail everyone rather than hang
            with self._cond:
                jobs = self._active + list(self._queue)
                self._active, self._thread = [], None
                self._queue.clear()
            for job in jobs:
                self._end(job, exc)
            raise

    def _admit(self) -> None:
        """Start queued comparisons, in order, while their streams fit (always at least one)."""
        while self._queue:
            job = self._queue[0]
            used = sum(j.rows for j in self._active)
            if self._active and used + job.rows > self.max_rows:
                return
            self._queue.popleft()
            prompt, methods, sp = job.args
            try:
                job.run = MethodsRun(
                    prompt, methods, sp, self.engine.stops, job.on_progress, job.on_partial, job.stops
                )
            except BaseException as exc:
                self._end(job, exc)
                continue
            self._active.append(job)
            self.peak_rows = max(self.peak_rows, used + job.rows)

    def _joinable(self) -> bool:
        """True when a queued comparison fits now, a running one was cancelled or one of its methods
        ended at a client stop while its request decoded: stop decoding, the next round rearranges."""
        with self._cond:
            if self._queue and sum(j.rows for j in self._active) + self._queue[0].rows <= self.max_rows:
                return True
        return any(j.run.dropped or (j.cancelled is not None and j.cancelled()) for j in self._active)

    def _round(self) -> None:
        """One engine call over every running comparison's waiting requests."""
        asked: list[Asked] = []
        owners: list[tuple[_Submitted, Any]] = []
        for job in list(self._active):
            try:
                if job.cancelled is not None and job.cancelled():
                    raise Cancelled("the run was cancelled")
                waiting = job.run.waiting()
                if not waiting:
                    self._end(job, None, job.run.finish())
                    continue
            except BaseException as exc:  # cancelled, or a callback stopped it (the deadline)
                self._end(job, exc)
                continue
            for item in waiting:
                asked.append(Asked(job.run.prompt, job.run.sp, item.pending))
                owners.append((job, item))
        self._owner = {id(a.request): job for a, (job, _) in zip(asked, owners)}
        self.engine.hooks = Hooks(partial=self._on_rows, interrupt=self._joinable)
        try:
            # An empty call still matters: the sampler drops the rows of comparisons that ended.
            answers: list[Answer | None] = self.engine.answer_ready(asked)
        except Exception as exc:  # the engine failed as a whole: every waiting method gets the error
            answers = [Answer(error=exc)] * len(asked)
        by_job: dict[int, tuple[_Submitted, list[Any], list[Answer | None]]] = {}
        for (job, item), ans in zip(owners, answers):
            by_job.setdefault(id(job), (job, [], []))
            by_job[id(job)][1].append(item)
            by_job[id(job)][2].append(ans)
        for job, items, job_answers in by_job.values():
            if job in self._active:
                job.run.deliver(items, job_answers)

    def _on_rows(self, req: Any, texts: list[str]) -> None:
        """Partial text of a baseline, passed to its own comparison (its callback's errors end it)."""
        job = self._owner.get(id(req))
        if job is None or job not in self._active:
            return
        try:
            job.run.on_rows(req, texts)
        except BaseException as exc:
            self._end(job, exc)

    def _end(
        self, job: _Submitted, error: BaseException | None, results: list[SearchResult] | None = None
    ) -> None:
        """A comparison leaves the loop (its streams leave the batch at the next engine call)."""
        with self._cond:
            if job in self._active:
                self._active.remove(job)
        job.error = error
        job.results = results or []
        job.done.set()
