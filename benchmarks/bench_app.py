"""The app as raters meet it, on default settings: `python app.py` started here, driven with gradio_client.

    python -m benchmarks.bench_app  # needs: the offline models and about 10 minutes of a quiet CPU

Figures (each also in llama.cpp token-times: llama.cpp's own per-token decode of one stream on the
same GGUF, measured in this run, so a figure survives a noisy machine):

- launch to the page answering, and launch to the first answer on a fresh cache (new data dir and
  `W2S_CACHE_DIR`: the GGUF tokenizer and adapters are built again);
- a warm default comparison (baseline, bon, w2s on the default preset), fastest and median of
  `--warm` prompts;
- `--raters` raters arriving at once, each with a prompt of the pool: every rater's wait from its
  request to its answers (mean and slowest), for each `--rows` value (W2S_BATCH_ROWS: how many
  streams the shared loop admits; a default comparison needs 9);
- per-token decode of one stream on the default path (our sampler over llama.cpp, 64 tokens, no
  early end) against llama.cpp's own loop.

The CPU is named in the output (model, cores, AVX-512 / VNNI flags) and the load average is taken
before each figure: on a shared 2-core machine a figure taken above a load of 1 is provisional.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.db import free_port  # noqa: E402

METHODS = "baseline,bon,w2s"


def load() -> float:
    """The 1-minute load average."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu() -> dict[str, Any]:
    """The CPU's model name, cores, and the flags that decide int8/bfloat16 speed."""
    info = Path("/proc/cpuinfo").read_text()
    name = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?"
    )
    flags = next(
        (line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []
    )
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
    return {"model": name, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags]}


def llama_token_ms(tokens: int = 64) -> float:
    """llama.cpp's own per-token decode of one stream on the default strong GGUF (own process)."""
    code = (
        "import time, sys\n"
        "from w2s_app.backends import llama_lib\n"
        "from w2s_app.backends.llamacpp import default_threads\n"
        "from w2s_app.backends.local import resolve_source\n"
        "from w2s_app.config import Settings\n"
        "gguf = resolve_source(Settings.from_env().preset().strong.source)[1]\n"
        "m = llama_lib.Model(gguf); c = llama_lib.Context(m, n_ctx=4096, n_seq_max=1, threads=default_threads())\n"
        "best = 1e9\n"
        "for _ in range(2):\n"
        "    c.clear(); p = m.tokenize('The movie was', add_special=True)\n"
        "    out = c.decode([(t, i, 0, i == len(p) - 1) for i, t in enumerate(p)])\n"
        "    tok, pos = int(out[-1].argmax()), len(p); start = time.perf_counter()\n"
        f"    for _ in range({tokens}):\n"
        "        out = c.decode([(tok, pos, 0, True)]); tok, pos = int(out[-1].argmax()), pos + 1\n"
        f"    best = min(best, (time.perf_counter() - start) / {tokens})\n"
        "print(best * 1000)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def our_token_ms(tokens: int = 64) -> float:
    """Our sampler's per-token decode of one stream on the default path (own process, no early end)."""
    code = (
        "import time\n"
        "from dataclasses import replace\n"
        "from w2s_app.config import Settings\n"
        "from w2s_app.backends.roles import Role\n"
        "from w2s_app.contracts import SamplingParams\n"
        "from w2s_app.search import run_methods\n"
        "from w2s_app.wiring import build_runner, engine_for\n"
        "r = build_runner(Settings.from_env()); m = r.engines.load(r.preset(None)).models\n"
        "s = m.strong; m.strong = Role(replace(s.spec, stop=()), replace(s.loaded, eos_ids=()))\n"
        "eng = engine_for(m, 'llamacpp')\n"
        f"sp = SamplingParams(max_new_tokens={tokens}, temperature=1.0, seed=0)\n"
        "best = 1e9\n"
        "for seed in range(3):\n"
        "    start = time.perf_counter()\n"
        "    (res,) = run_methods(eng, 'The movie was', [('baseline', {})], replace(sp, seed=seed))\n"
        "    best = min(best, (time.perf_counter() - start) / res.counts.strong_tokens)\n"
        "print(best * 1000)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


class App:
    """`python app.py` on a free port with its own data dir (and, optionally, its own cache)."""

    def __init__(self, data: Path, cache: Path | None = None, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        full = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
                "GRADIO_ANALYTICS_ENABLED": "False", "W2S_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1",
                "W2S_MIN_VOTE_SECONDS": "0", "W2S_RATE_LIMIT": "0", "W2S_ADDRESS_LIMIT": "0",
                "W2S_TOKEN_LIMIT": "0", **env}  # fmt: skip
        if cache is not None:
            full["W2S_CACHE_DIR"] = str(cache)
        data.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=full,
                                     stdout=(data / "app.log").open("w"), stderr=subprocess.STDOUT)  # fmt: skip
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError((data / "app.log").read_text()[-3000:])
            try:
                urllib.request.urlopen(self.url, timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        self.page_seconds = time.perf_counter() - self.started

    def client(self) -> Any:
        from gradio_client import Client

        return Client(self.url, verbose=False)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def compare(client: Any, token: str, prompt: str) -> float:
    """Seconds from request to answers of one default comparison."""
    start = time.perf_counter()
    out = client.predict(prompt, token, "", METHODS, api_name="/compare")
    seconds = time.perf_counter() - start
    if not all(a["status"] == "done" for a in out["answers"]):
        raise RuntimeError(f"a method failed: {out['answers']}")
    return seconds


def raters(app: App, prompts: list[str]) -> list[float]:
    """Every rater's wait when len(prompts) raters ask at once."""
    clients = [app.client() for _ in prompts]
    tokens = [c.predict(api_name="/token") for c in clients]
    waits: list[float] = [0.0] * len(prompts)
    start = threading.Barrier(len(prompts))

    def one(i: int) -> None:
        start.wait()
        waits[i] = compare(clients[i], tokens[i], prompts[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return waits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warm", type=int, default=5, help="warm comparisons timed one after another")
    ap.add_argument("--raters", type=int, default=8, help="raters arriving at once")
    ap.add_argument("--rows", default="9,18,36,128", help="W2S_BATCH_ROWS values to try with the raters")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    from w2s_app.config import Settings
    from w2s_app.prompt_pool import pool_for

    pool = pool_for(Settings.from_env().preset(None))
    out: dict[str, Any] = {"cpu": cpu(), "load_at_start": load()}
    out["llama_ms_per_token"] = unit = llama_token_ms()
    out["ours_ms_per_token"] = ours = our_token_ms()
    out["ours_over_llama"] = round(ours / unit, 3)
    print(f"CPU: {out['cpu']}\nllama.cpp {unit:.1f} ms/token; ours {ours:.1f} ms/token ({ours / unit:.2f}x)")

    def t(seconds: float) -> str:
        return f"{seconds:.2f} s ({1000 * seconds / unit:.0f} llama.cpp token-times)"

    tmp = Path(tempfile.mkdtemp(prefix="bench-app-"))
    try:
        out["load_before_fresh"] = load()
        app = App(tmp / "fresh", cache=tmp / "cache")
        try:
            client = app.client()
            token = client.predict(api_name="/token")
            compare(client, token, pool[0])
            out["launch_to_page"] = app.page_seconds
            out["launch_to_first_answer"] = time.perf_counter() - app.started
            print(
                f"fresh cache: page after {t(app.page_seconds)}, first answer after {t(out['launch_to_first_answer'])}"
            )
            out["load_before_warm"] = load()
            warm = [compare(client, token, p) for p in pool[1 : 1 + args.warm]]
            out["warm"] = {"fastest": min(warm), "median": statistics.median(warm), "all": warm}
            print(f"warm default comparison: fastest {t(min(warm))}, median {t(statistics.median(warm))}")
        finally:
            app.stop()
        out["raters"] = {}
        for rows in [r for r in args.rows.split(",") if r]:
            app = App(tmp / f"rows{rows}", W2S_BATCH_ROWS=rows)
            try:
                warmup = app.client()
                compare(warmup, warmup.predict(api_name="/token"), pool[0])
                out["raters"][rows] = {"load_before": load()}
                waits = raters(app, pool[10 : 10 + args.raters])
            finally:
                app.stop()
            mean, worst = statistics.mean(waits), max(waits)
            out["raters"][rows].update({"mean": mean, "slowest": worst, "waits": waits})
            print(
                f"{args.raters} raters at once, W2S_BATCH_ROWS={rows}: mean wait {t(mean)}, slowest {t(worst)}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
