"""One bridge from a worker thread to whoever waits on it: the page's generator or the service's loop.

The work runs in a daemon thread and emits events; one reader takes them in order, is told when
nothing came for a while (so it can show the waiting time or check that its client is still there),
and gets the worker's exception raised after the last event the worker emitted.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

E = TypeVar("E")

_END = object()  # the worker has returned or raised: nothing follows


class WorkerStream(Generic[E]):
    """Runs `work(emit)` in a thread; its events go to one synchronous or one asynchronous reader.

    Start it with `start()` for `read` (any thread) or with `start_async()` inside the event loop
    that runs `aread`. After the reader ends, `result` is what `work` returned.
    """

    def __init__(self, work: Callable[[Callable[[E], None]], Any], name: str = "w2s-worker") -> None:
        self.work = work
        self.name = name
        self.result: Any = None
        self.error: BaseException | None = None
        self._queue: queue.Queue[Any] | None = None
        self._async_queue: asyncio.Queue[Any] | None = None

    def start(self) -> None:
        """Start the worker for the synchronous reader (`read`)."""
        self._queue = queue.Queue()
        self._spawn(self._queue.put)

    def start_async(self) -> None:
        """Start the worker for the asynchronous reader (`aread`), in the running event loop."""
        loop = asyncio.get_running_loop()
        self._async_queue = asyncio.Queue()
        put = self._async_queue.put_nowait
        self._spawn(lambda item: loop.call_soon_threadsafe(put, item))

    def _spawn(self, put: Callable[[Any], None]) -> None:
        def run() -> None:
            try:
                self.result = self.work(put)
            except BaseException as exc:  # handed to the reader, which raises it
                self.error = exc
            finally:
                put(_END)

        threading.Thread(target=run, name=self.name, daemon=True).start()

    def read(self, tick: float) -> Iterator[E | None]:
        """The events in order; None when none came within `tick` seconds; then the worker's exception."""
        if self._queue is None:
            raise RuntimeError("start() the worker before reading it")
        while True:
            try:
                item = self._queue.get(timeout=tick)
            except queue.Empty:
                yield None
                continue
            if item is _END:
                break
            yield item
        self._raise()

    async def aread(self, tick: float) -> AsyncIterator[E | None]:
        """As `read`, for a coroutine: the loop goes on serving others while it waits."""
        if self._async_queue is None:
            raise RuntimeError("start_async() the worker before reading it")
        while True:
            try:
                item = await asyncio.wait_for(self._async_queue.get(), tick)
            except TimeoutError:
                yield None
                continue
            if item is _END:
                break
            yield item
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error
