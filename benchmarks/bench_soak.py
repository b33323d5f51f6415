"""An app that stays the same under use: rounds of 8 raters, then idle.

    python -m benchmarks.bench_soak                # 25 rounds of 8 raters (200 comparisons), ~12 minutes
    python -m benchmarks.bench_soak --rounds 4     # a quick look

`python app.py` on default settings (the offline preset, limits off as in bench_app) is started
here. After one warm-up round, each round sends 8 default comparisons at once from 8 new clients
(each with its own voter token), and each rater votes on what it was shown. Printed per round: the
raters' mean and slowest wait, and the app's resident memory after it. At the end: memory growth
from the warm-up to the last round, the last rounds' mean wait over the first rounds', and the
app's CPU over 60 s with no traffic (share of one core).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_app import App, cpu, load  # noqa: E402

RATERS = 8


def one_round(app: App, prompts: list[str], kept: list | None = None) -> list[float]:
    """Every rater's wait for one comparison (8 new clients at once, or the `kept` ones), each voting."""
    clients = kept or [app.client() for _ in prompts]
    tokens = [c.predict(api_name="/token") for c in clients]
    waits = [0.0] * len(prompts)
    start = threading.Barrier(len(prompts))

    def one(i: int) -> None:
        start.wait()
        began = time.perf_counter()
        out = clients[i].predict(prompts[i], tokens[i], "", "baseline,bon,w2s", api_name="/compare")
        waits[i] = time.perf_counter() - began
        clients[i].predict(out["comparison_id"], "A", tokens[i], api_name="/vote")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not kept:
        for c in clients:  # a rater who leaves closes the page: no heartbeat stream stays open
            c.close()
    return waits


def idle_share(proc: psutil.Process, seconds: float) -> float:
    """The process's CPU over `seconds` with no traffic, as a share of one core."""
    before = proc.cpu_times()
    time.sleep(seconds)
    after = proc.cpu_times()
    return (after.user - before.user + after.system - before.system) / seconds


def main() -> None:
    """Run the rounds and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=25, help="rounds of 8 raters after the warm-up round")
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of no traffic measured at the end")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the app (repeatable)")
    ap.add_argument("--same-clients", action="store_true", help="the same 8 clients every round")
    args = ap.parse_args()

    from w2s_app.config import Settings
    from w2s_app.prompt_pool import pool_for

    pool = list(pool_for(Settings.from_env().preset(None)))
    print(f"CPU: {cpu()}; load at start {load()}")
    app = App(Path(tempfile.mkdtemp()) / "data", **dict(e.split("=", 1) for e in args.env))
    proc = psutil.Process(app.proc.pid)
    try:
        kept = [app.client() for _ in range(RATERS)] if args.same_clients else None
        one_round(app, pool[:RATERS], kept)  # warm-up: models loaded, caches filled
        warm_rss = proc.memory_info().rss
        print(f"after warm-up: RSS {warm_rss / 2**20:.0f} MiB")
        print("| round | mean wait (s) | slowest (s) | RSS (MiB) |\n|---|---|---|---|")
        means = []
        for r in range(args.rounds):
            prompts = [pool[(RATERS * (r + 1) + i) % len(pool)] for i in range(RATERS)]
            waits = one_round(app, prompts, kept)
            means.append(statistics.mean(waits))
            rss = proc.memory_info().rss
            print(f"| {r + 1} | {means[-1]:.1f} | {max(waits):.1f} | {rss / 2**20:.0f} |", flush=True)
        grown = (rss - warm_rss) / warm_rss
        k = max(1, min(3, len(means) // 3))
        slower = statistics.mean(means[-k:]) / statistics.mean(means[:k])
        print(f"{args.rounds * RATERS} comparisons: RSS {warm_rss / 2**20:.0f} -> {rss / 2**20:.0f} MiB "
              f"({grown:+.1%}); last {k} rounds' mean wait over the first {k}: {slower:.2f}x")  # fmt: skip
        print(f"idle over {args.idle:.0f} s: {idle_share(proc, args.idle):.2%} of a core")
    finally:
        app.stop()


if __name__ == "__main__":
    main()
