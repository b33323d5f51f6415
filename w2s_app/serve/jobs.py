"""One API request as a job: its comparisons run in a worker thread, events flow to the event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from ..errors import RequestError
from ..model_queue import ModelQueue, Ticket
from ..runner import CompareRequest, RequestLimits, Runner
from .stops import StopStream, cut_at_stop

log = logging.getLogger(__name__)


@dataclass
class ChoicePlan:
    """One answer to produce: which prompt, which seed, its position in the response."""

    index: int
    prompt: str
    seed: int


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
    """What the worker reports: 'delta' (index, text), 'answer' (ChoiceAnswer), 'error' (exception), 'end'."""

    kind: str
    index: int = 0
    text: str = ""
    answer: ChoiceAnswer | None = None
    error: BaseException | None = None


@dataclass
class Job:
    """Runs every choice of one request in order, holding one place in the model queue."""

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
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    checked_at: float = 0.0  # when the request last checked that its client is still connected
    _cancel: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Start the worker thread; events arrive on `self.events` in the caller's loop."""
        loop = asyncio.get_running_loop()

        def emit(event: Event) -> None:
            loop.call_soon_threadsafe(self.events.put_nowait, event)

        def work() -> None:
            try:
                self.queue.run(self.ticket, self.cancelled, lambda: self._run_all(emit))
            except BaseException as exc:  # handed to the request's task
                emit(Event("error", error=exc))
            finally:
                emit(Event("end"))

        threading.Thread(target=work, name="w2s-serve-job", daemon=True).start()

    def cancel(self) -> None:
        """The client left: stop the search at its next step and free the queue place."""
        self._cancel.set()
        self.queue.wake()  # a job still waiting for its turn leaves the line now

    def cancelled(self) -> bool:
        """Polled by the queue and the search between steps."""
        return self._cancel.is_set()

    def _run_all(self, emit: Any) -> None:
        for choice in self.choices:
            if self.cancelled():
                return
            emit(Event("answer", choice.index, answer=self._run_one(choice, emit)))

    def _run_one(self, choice: ChoicePlan, emit: Any) -> ChoiceAnswer:
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
            limits=self.limits,
        )
        comp = self.runner.compare(request, on_partial=on_partial, cancelled=self.cancelled)
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
