"""One API request as a job: its comparisons run in a worker thread, events flow to the event loop."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import RequestError
from ..model_queue import ModelQueue, Ticket
from ..runner import CompareRequest, DeadlineExceeded, Plan, RequestLimits, Runner
from ..worker_stream import WorkerStream
from .client_stops import StopStream, cut_at_stop

log = logging.getLogger(__name__)


@dataclass
class ChoicePlan:
    """One answer to produce: which prompt, which seed, its position in the response."""

    index: int
    prompt: str
    seed: int
    plan: Plan | None = None  # the prompt's checked plan with this seed: the comparison is not planned again


@dataclass
class ChoiceAnswer:
    """A finished choice: the (stop-cut) text, why it ended, its token counts and the search's cost."""

    index: int
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    comparison_id: int | None
    result: Any  # the SearchResult, for score and counts


@dataclass
class Event:
    """What the worker reports: 'delta' (index, text) or 'answer' (ChoiceAnswer); its failure is raised."""

    kind: str
    index: int = 0
    text: str = ""
    answer: ChoiceAnswer | None = None


Emit = Callable[[Event], None]


@dataclass
class Job:
    """Runs every choice of one request at once, holding one place in the model queue.

    The request is one unit of cost: its choices share one deadline (and the service's cost cap and
    limits count them all), and on an engine that joins comparisons they decode in one batch.
    """

    runner: Runner
    queue: ModelQueue
    ticket: Ticket
    preset: str
    method: str
    settings: dict[str, Any]
    choices: list[ChoicePlan]
    stops: tuple[str, ...]
    voter_id: str
    client_hash: str | None
    limits: RequestLimits  # the deployment's cost cap and deadline, as the page's
    stream: bool = False  # text deltas are sent only to a streaming client
    _cancel: threading.Event = field(default_factory=threading.Event)
    _failed: threading.Event = field(default_factory=threading.Event)  # a choice failed: stop the others
    _worker: WorkerStream[Event] = field(init=False)

    def start(self) -> None:
        """Start the worker thread in the caller's event loop; read its events with `events`."""
        self._worker = WorkerStream(
            lambda emit: self.queue.run(self.ticket, self.cancelled, lambda: self._run_all(emit)),
            "w2s-serve-job",
        )
        self._worker.start_async()

    def events(self, tick: float) -> AsyncIterator[Event | None]:
        """The job's events as they come (None after `tick` s without one); its failure is raised."""
        return self._worker.aread(tick)

    def cancel(self) -> None:
        """The client left: stop the search at its next step and free the queue place."""
        self._cancel.set()
        self.queue.wake()  # a job still waiting for its turn leaves the line now

    def cancelled(self) -> bool:
        """Polled by the queue and the search between steps."""
        return self._cancel.is_set()

    def _stopped(self) -> bool:
        """Polled by each choice's search: the client left, or another choice failed."""
        return self._cancel.is_set() or self._failed.is_set()

    def _run_all(self, emit: Emit) -> None:
        """Every choice under one deadline, counted from when the models are loaded (as a comparison's)."""
        choices = list(self.choices)
        loaded = self._load()
        if self.cancelled():  # the client left while the models loaded
            return
        limits = self.limits
        if limits.seconds:
            limits = dataclasses.replace(limits, deadline=time.perf_counter() + limits.seconds)
        try:
            if not loaded and choices:
                # The models would not load: one choice tries again (and stores the failure, as a lone
                # comparison does) rather than every choice at once.
                first = choices.pop(0)
                emit(Event("answer", first.index, answer=self._run_one(first, emit, limits)))
            self._run_together(choices, emit, limits)
        except DeadlineExceeded:
            raise DeadlineExceeded(
                f"the request took longer than {self.limits.seconds:g} s and was stopped (all its "
                "choices share that time); ask for fewer choices (n) or prompts, fewer tokens or a "
                "smaller search, or try again when the server is less busy"
            ) from None

    def _load(self) -> bool:
        """Load the preset's models before the clock starts; False when they would not load."""
        try:
            self.runner.engines.load(self.runner.preset(self.preset))
        except Exception:  # the choice's comparison loads again and reports it
            return False
        return True

    def _run_together(self, choices: list[ChoicePlan], emit: Emit, limits: RequestLimits) -> None:
        """One thread per choice, so a joinable engine decodes them in one batch; answers come as they end.

        The first failure is the request's: it stops the other choices (their own errors, the
        cancellation it caused, are not reported).
        """
        errors: list[BaseException] = []
        lock = threading.Lock()

        def one(choice: ChoicePlan) -> None:
            try:
                answer = self._run_one(choice, emit, limits)
            except BaseException as exc:
                with lock:
                    if not errors:
                        errors.append(exc)
                self._failed.set()
                return
            emit(Event("answer", choice.index, answer=answer))

        threads = [
            threading.Thread(target=one, args=(c,), name=f"w2s-serve-choice-{c.index}", daemon=True)
            for c in choices
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _run_one(self, choice: ChoicePlan, emit: Emit, limits: RequestLimits) -> ChoiceAnswer:
        """One choice's comparison, its settled text streamed as deltas under its own index."""
        stream = StopStream(self.stops)

        def on_partial(_i: int, text: str) -> None:
            delta = stream.feed(text)
            if delta and self.stream:
                emit(Event("delta", choice.index, delta))

        request = CompareRequest(
            choice.prompt,
            self.preset,
            [self.method],
            {**self.settings, "seed": choice.seed},
            voter_id=self.voter_id,
            client_hash=self.client_hash,
            limits=limits,
            stops=self.stops,  # the search ends once a choice's settled text reaches a stop
        )
        comp = self.runner.compare(request, on_partial=on_partial, cancelled=self._stopped, plan=choice.plan)
        result = comp.results[0]
        if not result.ok:
            raise RuntimeError(f"the {self.method} search failed: {result.error}")
        rest = stream.finish(result.text)
        if rest and self.stream:
            emit(Event("delta", choice.index, rest))
        text, stopped = cut_at_stop(result.text, self.stops)
        prompt_tokens, completion_tokens = self._tokens(comp.prompt, text, result)
        return ChoiceAnswer(
            index=choice.index,
            text=text,
            finish_reason="stop" if stopped or result.eos else "length",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            comparison_id=comp.id,
            result=result,
        )

    def _tokens(self, prompt: str, text: str, result: Any) -> tuple[int, int]:
        """Strong-model tokens of the templated prompt and of the answer (a remote model's own counts)."""
        counted = self.runner.count_tokens(self.preset, prompt, text)
        if counted is not None:
            return counted
        return result.counts.prompt_tokens, result.counts.completion_tokens


def is_client_error(exc: BaseException) -> bool:
    """A request the client can fix (400), as opposed to a server failure (500) or a cancel."""
    return isinstance(exc, RequestError)
