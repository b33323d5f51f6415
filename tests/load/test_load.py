"""Load: 16 concurrent gradio_client users, 3 comparisons and votes each, against the real app.

Every request must either complete or get a clean "queue is full" answer; no database-locked error,
no lost vote, and the app's memory must stay bounded. Prints the figures (seen in CI's output).
"""

from __future__ import annotations

import sqlite3
import threading
import time

import psutil
import pytest
from gradio_client import Client

from tests.app_server import AppServer

pytestmark = pytest.mark.load
USERS, ROUNDS = 16, 3


@pytest.fixture(scope="module")
def server(tiny_presets_file, tmp_path_factory):
    # A short queue so that some users really meet the "busy" answer.
    srv = AppServer(
        tiny_presets_file,
        tmp_path_factory.mktemp("load") / "data",
        W2S_MIN_VOTE_SECONDS="0",
        W2S_MAX_QUEUE="6",
        W2S_RATE_LIMIT="0",
    )
    yield srv
    srv.stop()


def test_concurrent_users(server):
    proc = psutil.Process(server.proc.pid)
    warm = Client(server.url, verbose=False)
    out = warm.predict("warm up", "warm", "tiny", "baseline", api_name="/compare")
    assert out["answers"]
    rss_before = proc.memory_info().rss
    stats = {"ok": 0, "busy": 0, "votes": 0, "errors": []}
    voted: list[int] = []
    lock = threading.Lock()

    def user(u: int) -> None:
        client = Client(server.url, verbose=False)
        for r in range(ROUNDS):
            try:
                res = client.predict(f"User {u} question {r}?", f"user-{u}", "tiny", "baseline,bon",
                                     api_name="/compare")  # fmt: skip
            except Exception as exc:
                with lock:
                    if "queue is full" in str(exc).lower():
                        stats["busy"] += 1
                    else:
                        stats["errors"].append(f"compare: {exc}")
                continue
            with lock:
                stats["ok"] += 1
            try:
                client.predict(res["comparison_id"], "A", f"user-{u}", api_name="/vote")
                with lock:
                    stats["votes"] += 1
                    voted.append(res["comparison_id"])
            except Exception as exc:
                with lock:
                    stats["errors"].append(f"vote: {exc}")

    start = time.time()
    threads = [threading.Thread(target=user, args=(u,)) for u in range(USERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    seconds = time.time() - start
    rss_after = proc.memory_info().rss
    with sqlite3.connect(server.db) as db:
        vote_rows = {r[0] for r in db.execute("select comparison_id from vote where voter_id like 'user-%'")}
        bad = db.execute(
            "select count(*) from comparison c where c.status='done' and "
            "(select count(*) from generation g where g.comparison_id=c.id) = 0"
        ).fetchone()[0]
    log = server.log.read_text()
    print(
        f"\nload: {USERS} users x {ROUNDS} rounds in {seconds:.1f} s: {stats['ok']} comparisons, "
        f"{stats['busy']} busy answers, {stats['votes']} votes, {len(stats['errors'])} errors; "
        f"app RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB"
    )
    assert not any(t.is_alive() for t in threads)
    assert stats["errors"] == []
    assert stats["ok"] + stats["busy"] == USERS * ROUNDS
    assert stats["ok"] > 0
    assert vote_rows == set(voted)  # no vote lost, none invented
    assert bad == 0
    assert "database is locked" not in log
    assert rss_after - rss_before < 1024 * 2**20  # bounded: well under a GiB of growth
