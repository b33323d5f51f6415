"""Load: 24 concurrent gradio_client users (token, comparison, vote), first alone, then with 8
clients polling the leaderboard (its JSON route, twice a second each), against the real app; and one
oversized request.

Every request must complete or get a clean "queue is full" answer; no database-locked error, no
lost vote, bounded memory; polling must not refit the leaderboard (fits grow with votes only).
Prints the figures (seen in CI's output): comparison seconds without and with the pollers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request

import psutil
import pytest
from gradio_client import Client

from tests.app_server import AppServer

pytestmark = pytest.mark.load
USERS, POLLERS = 24, 8


@pytest.fixture(scope="module")
def server(tiny_presets_file, tmp_path_factory):
    # Everyone comes from 127.0.0.1 here, so the per-address limits are off; the cost cap stays on.
    srv = AppServer(
        tiny_presets_file,
        tmp_path_factory.mktemp("load") / "data",
        W2S_MIN_VOTE_SECONDS="0",
        W2S_RATE_LIMIT="0",
        W2S_ADDRESS_LIMIT="0",
        W2S_TOKEN_LIMIT="0",
    )
    yield srv
    srv.stop()


def run_users(server, phase: str, stats: dict, lock: threading.Lock) -> None:
    """USERS threads, each: a token, one comparison, one vote."""

    def user(u: int) -> None:
        client = Client(server.url, verbose=False)
        token = client.predict(api_name="/token")
        try:
            res = client.predict(f"{phase} user {u}?", token, "tiny", "baseline,bon", api_name="/compare")
        except Exception as exc:
            with lock:
                if "queue is full" in str(exc).lower():
                    stats["busy"] += 1
                else:
                    stats["errors"].append(f"compare: {exc}")
            return
        with lock:
            stats["ok"] += 1
        try:
            client.predict(res["comparison_id"], "A", token, api_name="/vote")
            with lock:
                stats["voted"].append(res["comparison_id"])
        except Exception as exc:
            with lock:
                stats["errors"].append(f"vote: {exc}")

    threads = [threading.Thread(target=user, args=(u,)) for u in range(USERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not any(t.is_alive() for t in threads)


def mean_seconds(server, phase: str) -> float:
    """Mean model seconds of a phase's comparisons (the runner's time, queue wait excluded)."""
    with sqlite3.connect(server.db) as db:
        (value,) = db.execute(
            "select avg(seconds) from comparison where status='done' and prompt like ?", (f"{phase} user %",)
        ).fetchone()
    return float(value)


def test_concurrent_users_with_leaderboard_pollers(server):
    proc = psutil.Process(server.proc.pid)
    warm = Client(server.url, verbose=False)
    token = warm.predict(api_name="/token")
    assert warm.predict("warm up", token, "tiny", "baseline", api_name="/compare")["answers"]
    with pytest.raises(Exception, match="too large"):  # N=64 at 4096 tokens: refused before it runs
        warm.predict("Write a novel.", token, "tiny", "bon,w2s", 16, 16, 4096, 64, 4096, api_name="/compare")
    rss_before = proc.memory_info().rss
    stats = {"ok": 0, "busy": 0, "voted": [], "errors": []}
    lock = threading.Lock()

    start = time.time()
    run_users(server, "alone", stats, lock)
    alone_wall = time.time() - start
    fits_before = warm.predict("tiny", api_name="/leaderboard")["fits"]

    polls = {"n": 0, "refused": 0}
    stop = threading.Event()
    died: list[str] = []

    def poller() -> None:
        # The plain JSON route (what a page or script that polls should use), twice a second each; a
        # refusal (429, all pollers share one address) is honoured by waiting its Retry-After.
        try:
            while not stop.wait(0.5):
                try:
                    with urllib.request.urlopen(
                        f"{server.url}w2s/leaderboard.json?preset=tiny", timeout=30
                    ) as r:
                        assert json.load(r)["counts"]["votes"] >= 0
                    kind = "n"
                except urllib.error.HTTPError as exc:
                    if exc.code != 429:
                        raise
                    stop.wait(float(exc.headers["Retry-After"]))
                    kind = "refused"
                with lock:
                    polls[kind] += 1
        except BaseException as exc:  # a poller that dies would measure less load than the test says
            died.append(f"{type(exc).__name__}: {exc}")

    pollers = [threading.Thread(target=poller) for _ in range(POLLERS)]
    for t in pollers:
        t.start()
    start = time.time()
    voted_before = len(stats["voted"])
    run_users(server, "polled", stats, lock)
    polled_wall = time.time() - start
    stop.set()
    for t in pollers:
        t.join(60)
    fits_after = warm.predict("tiny", api_name="/leaderboard")["fits"]
    rss_after = proc.memory_info().rss

    alone, polled = mean_seconds(server, "alone"), mean_seconds(server, "polled")
    with sqlite3.connect(server.db) as db:
        vote_rows = {
            r[0]
            for r in db.execute("select c.public_id from vote v join comparison c on c.id = v.comparison_id")
        }
    print(
        f"\nload: {USERS} users alone {alone_wall:.1f} s, with {POLLERS} pollers ({polls['n']} polls, "
        f"{polls['refused']} refused) "
        f"{polled_wall:.1f} s; comparison model seconds {alone:.2f} alone vs {polled:.2f} polled "
        f"(x{polled / alone:.2f}); leaderboard fits {fits_before} -> {fits_after} for "
        f"{len(stats['voted']) - voted_before} votes; {stats['busy']} busy answers; "
        f"app RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB"
    )
    assert died == [] and stats["errors"] == []
    assert stats["ok"] + stats["busy"] == 2 * USERS and stats["ok"] > 0
    assert vote_rows >= set(stats["voted"])  # no acknowledged vote lost
    # Polling never fits: the refresher fits at most once per view per refresh, after votes only.
    assert polls["n"] > 0 and fits_after - fits_before <= len(stats["voted"]) - voted_before + 1
    assert "database is locked" not in server.log.read_text()
    assert rss_after - rss_before < 1024 * 2**20  # bounded: well under a GiB of growth
