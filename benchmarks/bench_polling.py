"""What leaderboard pollers cost the raters: warm comparisons with and without 8 tight-loop pollers.

    python -m benchmarks.bench_polling  # needs: the offline models and about 10 minutes of a quiet CPU

`python app.py` (default settings, limits as shipped) is started here; a warm default comparison
(baseline, bon, w2s) is timed with nobody polling, then while 8 clients poll the Gradio
`/leaderboard` endpoint in a tight loop (each asks again the moment it has an answer or a
refusal), then while 8 clients do the same on `GET /w2s/leaderboard.json`; then the same two
routes with 20 spellings of one view (`min_vote_seconds=0`, `0.0`, `0.00`, ...) and with a new
value every request (spread over 0-3600 s, switches alternating). The pollers run in their own
process. Each condition is timed on the same prompts, in rounds that alternate the
conditions so a drifting machine hurts all of them alike. Figures: each condition's median over
the unpolled median, for a comparison's seconds and for the CPU seconds the app process used
during it (what serving the pollers cost the server, apart from the pollers' own CPU on the same
cores). The pollers' answered and refused calls are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_app import App, compare, cpu, load  # noqa: E402

LIMITS = {"W2S_RATE_LIMIT": "20", "W2S_ADDRESS_LIMIT": "60", "W2S_TOKEN_LIMIT": "10"}  # as shipped
# Pollers: the plain view, 20 spellings of it, and a new value every request, on each route.
ROUTES = ("gradio", "json", "json-spellings", "json-new", "gradio-spellings", "gradio-new")


def poll(url: str, route: str, clients: int, seconds: float) -> dict[str, int]:
    """`clients` threads polling one route in a tight loop for `seconds`; answered and refused calls."""
    counts = {"answered": 0, "refused": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def one() -> None:
        client = None
        if route.startswith("gradio"):
            from gradio_client import Client

            client = Client(url, verbose=False)
        i = 0
        while time.monotonic() < stop:
            i += 1
            seconds, flag = view_of(route, i)
            try:
                if client is not None:
                    client.predict("", flag, seconds, flag, "humans", False, api_name="/leaderboard")
                else:
                    query = (
                        f"?min_vote_seconds={seconds}&style_control={int(flag)}&drop_one_position={int(flag)}"
                    )
                    urllib.request.urlopen(url + "w2s/leaderboard.json" + query, timeout=30).read()
                kind = "answered"
            except (
                Exception
            ):  # a refusal (HTTP 400, or the endpoint's error): ask again at once, as a script would
                kind = "refused"
            with lock:
                counts[kind] += 1

    threads = [threading.Thread(target=one, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def view_of(route: str, i: int) -> tuple[str, bool]:
    """The i-th request's min_vote_seconds (as text) and switches: one view, 20 spellings of it, or a
    new value every request (spread over 0-3600 s, switches alternating, so views keep changing)."""
    if route.endswith("-spellings"):
        return "0." + "0" * (i % 20), False
    if route.endswith("-new"):
        return f"{(i * 7.31) % 3600:.6f}", bool(i % 2)
    return "0", False


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def poller_cmd(url: str, route: str, clients: int, seconds: float) -> list[str]:
    """The command line of a poller process."""
    return [sys.executable, "-m", "benchmarks.bench_polling", "--poll", url, "--route", route,
            "--clients", str(clients), "--seconds", str(seconds)]  # fmt: skip


class Pollers:
    """The poller process for one route (started, then stopped)."""

    def __init__(self, url: str, route: str, clients: int) -> None:
        self.proc = subprocess.Popen(
            poller_cmd(url, route, clients, 3600), cwd=ROOT, stdout=subprocess.DEVNULL
        )
        time.sleep(8)  # the clients connect and reach their tight loop

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def counted_poll(url: str, route: str, clients: int, seconds: float) -> dict[str, int]:
    """Run the pollers alone for `seconds` and return their counts (their rate when nothing else runs)."""
    out = subprocess.run(poller_cmd(url, route, clients, seconds), cwd=ROOT, capture_output=True, text=True,
                         check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds of (no pollers, gradio, json)")
    ap.add_argument("--clients", type=int, default=8, help="pollers per route")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--poll", help=argparse.SUPPRESS)  # the poller process: this app URL
    ap.add_argument("--route", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=10, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.poll:
        print(json.dumps(poll(args.poll, args.route, args.clients, args.seconds)), flush=True)
        return

    from w2s_app.config import Settings
    from w2s_app.prompt_pool import pool_for

    pool = pool_for(Settings.from_env().preset(None))
    out: dict[str, Any] = {"cpu": cpu(), "load_at_start": load()}
    with tempfile.TemporaryDirectory(prefix="bench-polling-") as tmp:
        app = App(Path(tmp) / "data", **LIMITS)
        try:
            client = app.client()
            token = client.predict(api_name="/token")
            compare(client, token, pool[0])  # warm
            for route in ROUTES:
                out[f"{route}_polls_in_10s_alone"] = counts = counted_poll(app.url, route, args.clients, 10)
                print(f"{args.clients} pollers on {route} alone, 10 s: {counts}")
            times: dict[str, list[float]] = {"none": [], **{route: [] for route in ROUTES}}
            app_cpu: dict[str, list[float]] = {c: [] for c in times}
            for r in range(args.rounds):
                prompt = pool[1 + r]
                for cond in times:
                    pollers = Pollers(app.url, cond, args.clients) if cond != "none" else None
                    try:
                        before = cpu_seconds(app.proc.pid)
                        times[cond].append(compare(client, token, prompt))
                        app_cpu[cond].append(cpu_seconds(app.proc.pid) - before)
                    finally:
                        if pollers is not None:
                            pollers.stop()
                print(f"round {r + 1}: " + ", ".join(
                    f"{c} {v[-1]:.2f} s (app CPU {app_cpu[c][-1]:.2f} s)" for c, v in times.items()))  # fmt: skip
        finally:
            app.stop()
    base = statistics.median(times["none"])
    out["seconds"], out["app_cpu_seconds"] = times, app_cpu
    out["load_at_end"] = load()
    for cond in ROUTES:
        out[f"{cond}_over_none"] = ratio = statistics.median(times[cond]) / base
        cpu_ratio = statistics.median(app_cpu[cond]) / statistics.median(app_cpu["none"])
        out[f"{cond}_app_cpu_over_none"] = cpu_ratio
        print(f"{args.clients} tight-loop pollers on {cond}: comparisons take {ratio:.3f}x, the app's CPU "
              f"per comparison {cpu_ratio:.3f}x (medians of {args.rounds})")  # fmt: skip
    print(f"CPU {out['cpu']}; load {out['load_at_start']} at start, {out['load_at_end']} at the end")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
