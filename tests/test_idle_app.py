"""An idle app is idle: after a comparison and a vote, with every client gone, the app process uses
under 0.5% of a core (Gradio's own queue looked for work every millisecond: 4% with nobody there).

The 60 s figure and memory over 200 comparisons are `benchmarks/bench_soak.py`'s (docs/public-arena.md,
"Running a public arena"); this test measures 20 s, long enough for every periodic task of the app to run.
"""

from __future__ import annotations

import time

import psutil
from gradio_client import Client

from tests.app_server import AppServer

IDLE_SECONDS = 20.0


def test_an_app_with_no_traffic_uses_almost_no_cpu(tiny_presets_file, tmp_path):
    srv = AppServer(tiny_presets_file, tmp_path / "data", W2S_PRESET="fake", W2S_MIN_VOTE_SECONDS="0")
    try:
        client = Client(srv.url, verbose=False)
        token = client.predict(api_name="/token")
        shown = client.predict("Say hi.", token, "fake", "baseline,bon,w2s", api_name="/compare")
        client.predict(shown["comparison_id"], "A", token, api_name="/vote")
        client.close()
        time.sleep(6)  # past the queue's quiet spell and the leaderboard's refit after the vote
        proc = psutil.Process(srv.proc.pid)
        before = proc.cpu_times()
        time.sleep(IDLE_SECONDS)
        after = proc.cpu_times()
        share = (after.user - before.user + after.system - before.system) / IDLE_SECONDS
    finally:
        srv.stop()
    assert share < 0.005, f"idle app used {share:.2%} of a core over {IDLE_SECONDS:g} s"
