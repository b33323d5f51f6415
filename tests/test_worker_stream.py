"""The bridge from a worker thread to its reader, synchronous (the page) and asynchronous (the service)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from w2s_app.worker_stream import WorkerStream


def slow_work(release: threading.Event, fail: bool = False):
    """Emits 1, waits for the reader to have ticked, emits 2, then returns 'done' or raises."""

    def work(emit):
        emit(1)
        assert release.wait(5), "the reader never ticked"
        emit(2)
        if fail:
            raise ValueError("the search broke")
        return "done"

    return work


@pytest.mark.parametrize("fail", [False, True])
def test_the_synchronous_reader_ticks_while_waiting_and_raises_the_workers_error(fail):
    release = threading.Event()
    worker = WorkerStream(slow_work(release, fail))
    worker.start()
    seen = []
    try:
        for event in worker.read(0.01):
            seen.append(event)
            if event is None:
                release.set()  # the worker waits until the reader was told nothing came
    except ValueError as exc:
        assert fail and str(exc) == "the search broke"
    else:
        assert not fail and worker.result == "done"
    events = [e for e in seen if e is not None]
    assert events == [1, 2] and None in seen  # every event, in order, and a tick while none came


@pytest.mark.parametrize("fail", [False, True])
def test_the_asynchronous_reader_ticks_while_waiting_and_raises_the_workers_error(fail):
    release = threading.Event()

    async def read() -> tuple[list, BaseException | None]:
        worker = WorkerStream(slow_work(release, fail))
        worker.start_async()
        seen: list = []
        try:
            async for event in worker.aread(0.01):
                seen.append(event)
                if event is None:
                    release.set()
        except ValueError as exc:
            return seen, exc
        assert worker.result == "done"
        return seen, None

    seen, error = asyncio.run(read())
    assert (error is not None) == fail
    assert [e for e in seen if e is not None] == [1, 2] and None in seen


def test_events_emitted_from_many_threads_all_arrive():
    """The service's choices emit from a thread each: none is lost, and the reader ends after all."""

    def work(emit):
        threads = [threading.Thread(target=lambda i=i: [emit((i, k)) for k in range(50)]) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    async def read() -> list:
        worker = WorkerStream(work)
        worker.start_async()
        return [e async for e in worker.aread(0.05) if e is not None]

    got = asyncio.run(read())
    assert sorted(got) == [(i, k) for i in range(4) for k in range(50)]
    for i in range(4):  # each thread's events keep their order
        assert [k for j, k in got if j == i] == list(range(50))
