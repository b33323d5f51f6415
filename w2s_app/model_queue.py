"""One bounded, first-come-first-served line for the models: a few runs at a time, a few waiting."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class QueueFull(Exception):
    """The line is full; `retry_after` is a rough wait in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy (queue full); retry in about {retry_after} s")
        self.retry_after = retry_after


class Ticket:
    """A place in the line, held from admission until the run ends or the client leaves."""


class ModelQueue:
    """At most `max_running` running tickets and `max_waiting` waiting ones; more are refused (429).

    Several runs at a time share the engine's decode loop (the runner joins them into one batch).
    Thread-based (runs happen in worker threads), so any caller, async or not, can share it.
    """

    def __init__(self, max_waiting: int, max_running: int = 1) -> None:
        self.max_waiting = max_waiting
        self.max_running = max(1, max_running)
        self._cond = threading.Condition()
        self._line: deque[Ticket] = deque()
        self._running: set[Ticket] = set()
        self._mean_seconds = 5.0  # running mean of run times, for Retry-After

    def enter(self) -> Ticket:
        """Enter the line: take a place in it, or raise QueueFull."""
        with self._cond:
            busy = len(self._line) + len(self._running)
            if busy >= self.max_running + self.max_waiting:
                waves = math.ceil(busy / self.max_running)
                raise QueueFull(max(1, math.ceil(self._mean_seconds * waves)))
            ticket = Ticket()
            self._line.append(ticket)
            return ticket

    def wait_turn(self, ticket: Ticket, cancelled: Callable[[], bool], poll: float = 1.0) -> bool:
        """Block until the ticket runs (True), or the caller gave up meanwhile (False, place freed).

        Waiters sleep until `leave` or `wake` notifies them (`poll` is only a safety net): threads
        waking often would take the GIL from the running search again and again.
        """
        with self._cond:
            while not (len(self._running) < self.max_running and self._line and self._line[0] is ticket):
                if cancelled():
                    self._drop(ticket)
                    return False
                self._cond.wait(poll)
            self._line.popleft()
            self._running.add(ticket)
            return True

    def wake(self) -> None:
        """Make waiters look again at their `cancelled` (a caller gave up)."""
        with self._cond:
            self._cond.notify_all()

    def leave(self, ticket: Ticket, seconds: float | None = None) -> None:
        """Free the ticket's place (running or waiting); idempotent."""
        with self._cond:
            if seconds is not None:
                self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * seconds
            self._drop(ticket)

    def _drop(self, ticket: Ticket) -> None:
        if ticket in self._running:
            self._running.discard(ticket)
        elif ticket in self._line:
            self._line.remove(ticket)
        self._cond.notify_all()

    def state(self) -> dict[str, int]:
        """Running and waiting counts, for /health."""
        with self._cond:
            return {"running": len(self._running), "waiting": len(self._line)}

    def run(self, ticket: Ticket, cancelled: Callable[[], bool], work: Callable[[], object]) -> object:
        """Wait for the ticket's turn, run `work`, free the place; None when the caller left first."""
        try:
            if not self.wait_turn(ticket, cancelled):
                return None
            start = time.perf_counter()
            try:
                return work()
            finally:
                self.leave(ticket, time.perf_counter() - start)
        finally:
            self.leave(ticket)
