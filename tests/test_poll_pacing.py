"""Leaderboard pollers are paced per address: answers come at most once a turn, and a refusal is as
slow as the slowest answer, so a client in a tight loop cannot spin on refusals (issue 23)."""

from __future__ import annotations

import threading
import time

from w2s_app.arena import ArenaError
from w2s_app.arena.boards import BoardPayloads


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
        except ArenaError:
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


def _services(tmp_path, presets_file):
    from w2s_app.config import Settings
    from w2s_app.wiring import build_services

    env = {"W2S_DATA_DIR": str(tmp_path), "W2S_PRESETS": str(presets_file), "W2S_PRESET": "fake"}
    return build_services(Settings.from_env(env))


def test_twenty_spellings_of_one_view_are_paced_and_fitted_like_one(tmp_path, tiny_presets_file):
    """`0`, `0.0`, `0.00`, ... and new tiny values each request are one canonical view: one fit, one
    pacing key (the outside test got 20 answers in 0.03 s where pacing promised 19 s)."""
    services = _services(tmp_path, tiny_presets_file)
    services.board.start()
    payloads = BoardPayloads(services, poll_seconds=0.1, max_wait=5.0)
    spellings = [
        "0",
        "0.0",
        *("0." + "0" * i for i in range(2, 10)),
        *(f"{i * 1e-6:.6f}" for i in range(1, 11)),
    ]
    began = time.monotonic()
    for seconds in spellings:
        payload, _ = payloads.get(None, "fake", "0", seconds, "false", "humans", "no")
    assert time.monotonic() - began >= 0.1 * (len(spellings) - 1) * 0.95  # one turn each, like one view
    assert services.board.fits == 1 and payload["counts"]["votes"] == 0
    services.board.stop()


def test_new_views_are_fitted_in_the_background_at_a_bounded_rate(tmp_path, tiny_presets_file):
    """Many new views at once: none is fitted in the asking thread, at most one per new_view_seconds,
    and a view still queued is refused with when to ask again (429 on the routes)."""
    from w2s_app.leaderboard.cache import BoardPending, LeaderboardCache
    from w2s_app.leaderboard.views import VOTE_SECONDS_GRID, parse_view

    services = _services(tmp_path, tiny_presets_file)
    cache = LeaderboardCache(services.store, new_view_seconds=0.5)
    cache.start()
    views = [parse_view({"min_vote_seconds": s}, lambda p: p) for s in VOTE_SECONDS_GRID[:6]]
    outcome: dict[int, str] = {}

    def ask(i: int) -> None:
        try:
            cache.get(views[i], wait=0.2)
            outcome[i] = "answered"
        except BoardPending as exc:
            outcome[i] = f"pending {exc.retry_after:g}"

    began = time.monotonic()
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(views))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(o == "answered" for o in outcome.values()) == 1  # the first, fitted at once
    assert all(o.startswith("pending") for o in outcome.values() if o != "answered")
    while cache.fits < len(views) and time.monotonic() - began < 10:
        time.sleep(0.05)
    elapsed = time.monotonic() - began
    assert cache.fits == len(views) and elapsed >= 0.5 * (len(views) - 1) * 0.9  # bounded rate
    assert all(cache.get(v, wait=0) is not None for v in views)  # then every one is cached
    cache.stop()


def test_a_new_view_every_request_is_paced_per_address_too():
    """A poller that asks for a new view each time gets two answers a turn, not one per request."""
    pacer = BoardPayloads(services=None, poll_seconds=0.2, max_wait=5.0)  # type: ignore[arg-type]
    began = time.monotonic()
    for i in range(11):
        pacer._pace("one address", ("offline", i))
    assert time.monotonic() - began >= 10 * 0.1 * 0.95  # 11 answers: 10 waits of half a turn
