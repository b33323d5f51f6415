"""Leaderboard pollers are paced per address: answers come at most once a turn, and a refusal is as
slow as the slowest answer, so a client in a tight loop cannot spin on refusals (issue 23)."""

from __future__ import annotations

import threading
import time

from w2s_app.ui.caller import UserError
from w2s_app.ui.routes import BoardPayloads


def test_pollers_at_once_are_answered_in_turns_and_refusals_wait_as_long():
    pacer = BoardPayloads(services=None, poll_seconds=0.5, max_wait=1.2)  # type: ignore[arg-type]
    start = threading.Barrier(8)
    results: list[tuple[str, float]] = []
    lock = threading.Lock()

    def poll() -> None:
        start.wait()
        began = time.monotonic()
        try:
            pacer._pace("one address", ("offline",))
            kind = "answered"
        except UserError:
            kind = "refused"
        with lock:
            results.append((kind, time.monotonic() - began))

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answered = sorted(s for k, s in results if k == "answered")
    refused = [s for k, s in results if k == "refused"]
    assert len(answered) == 3 and len(refused) == 5  # turns at 0, 0.5 and 1.0 s; 1.5 s is past max_wait
    assert answered[1] >= 0.45 and answered[2] >= 0.95  # one answer a turn
    assert min(refused) >= 1.15  # a refusal waits as long as the longest accepted wait
    # Another address, or another view, has its own turns.
    began = time.monotonic()
    pacer._pace("another address", ("offline",))
    pacer._pace("one address", ("offline", "style"))
    assert time.monotonic() - began < 0.3
