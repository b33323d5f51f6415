"""Many raters at once: eight default comparisons one at a time vs joined into one decode loop.

Both runs go through the same `SharedLoop` on the same warm engine: one at a time, each comparison
is submitted when the previous one has answered (what a strictly sequential queue gives); joined,
all are submitted at once from their own threads and decode in one batch. Reported per engine:
total seconds, each comparison's latency counted from the moment all eight arrived (what the
last rater in line waits) and its own run time, the ratio joined / one at a time, and how many
comparisons gave exactly the texts they gave alone.

    python -m benchmarks.bench_joined                         # preset sentiment-positive, CPU
    python -m benchmarks.bench_joined --engines fast,llamacpp --many 8
    python -m benchmarks.bench_joined --device cuda --preset offline-random   # GPU (docs/speed.md)

The GPU run uses random weights in the offline models' shapes (`benchmarks/random_weights.py`):
the weights cannot travel there, and speed does not depend on their values (their answers never
end early, so every stream runs its whole budget).

Each engine runs on the preset's roles as the app loads them for it: `fast` in transformers at
`--dtype` (default W2S_DTYPE, whose default `auto` picks float32 or int8 on a CPU, bfloat16/float16
on a GPU; the resolved precision is printed), `llamacpp` on the GGUF files in llama.cpp, guides
included (engines/llamacpp_scorer.py). The CPU (model, cores, AVX-512 / VNNI flags) and the load
average before and after each engine are printed: on a shared 2-core machine a figure taken above a
load of 1 is provisional.

    python -m benchmarks.bench_joined --engines llamacpp --many 2 --max-new-tokens 8  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.bench_app import cpu, load
from w2s_app.backends.local import ModelPool
from w2s_app.backends.roles import Models
from w2s_app.config import Preset, Settings
from w2s_app.contracts import SamplingParams
from w2s_app.runner import CompareRequest
from w2s_app.search import SharedLoop, rows_needed
from w2s_app.wiring import build_runner, engine_for

METHODS = ["baseline", "bon", "w2s"]


THREADS: dict[str, int | None] = {"n": None}  # --threads, for the engines this script builds itself


def load_models(settings: Settings, pool: ModelPool, preset: Preset, name: str) -> Models:
    """The preset's roles as the composition root loads them for engine `name` (W2S_ENGINE=name):
    for `llamacpp` the GGUF roles in llama.cpp (guides scored by engines/llamacpp_scorer.py), for
    `fast` in transformers (the cached scorer). One pool for every engine: nothing loads twice."""
    return build_runner(replace(settings, engine=name), pool=pool).engines.load(preset).models


def make_engine(name: str, models: Models) -> Any:
    """A joinable engine by name ('fast': transformers; 'llamacpp': GGUF in llama.cpp), with the
    guides' own scorer."""
    return engine_for(models, name, threads=THREADS["n"])


def one_at_a_time(loop: SharedLoop, prompts: list[str], methods: list, sp: SamplingParams) -> dict:
    """Each comparison submitted after the previous answered."""
    start = time.perf_counter()
    own, waited, results = [], [], []
    for p in prompts:
        t = time.perf_counter()
        results.append(loop.run(p, methods, sp))
        own.append(time.perf_counter() - t)
        waited.append(time.perf_counter() - start)
    return {"total": time.perf_counter() - start, "own": own, "waited": waited, "results": results}


def joined(loop: SharedLoop, prompts: list[str], methods: list, sp: SamplingParams) -> dict:
    """All comparisons submitted at once, each from its own thread."""
    results: list[Any] = [None] * len(prompts)
    waited = [0.0] * len(prompts)
    gate = threading.Barrier(len(prompts) + 1)

    def work(i: int, prompt: str) -> None:
        gate.wait()
        results[i] = loop.run(prompt, methods, sp)
        waited[i] = time.perf_counter() - start

    threads = [threading.Thread(target=work, args=(i, p)) for i, p in enumerate(prompts)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    gate.wait()
    for t in threads:
        t.join()
    return {"total": time.perf_counter() - start, "own": waited, "waited": waited, "results": results}


def rss_mb() -> int:
    """This process's resident memory in MB."""
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20)


def throughput(
    engine: Any, prompts: list[str], methods: list, sp: SamplingParams, max_rows: int, memory: int = 0
) -> dict:
    """One-at-a-time vs joined on one warm engine; texts compared comparison by comparison.

    With `memory`, that many more comparisons then run through the same loop (the app keeps one
    engine per preset), and resident memory is reported after the warm-up and after them.
    """
    loop = SharedLoop(engine, max_rows=max_rows)
    loop.run(prompts[0], methods, sp)  # warm-up: first-call costs out of both figures
    rss = [rss_mb()]
    solo = one_at_a_time(loop, prompts, methods, sp)
    together = joined(loop, prompts, methods, sp)
    rss.append(rss_mb())
    for i in range(memory):
        loop.run(prompts[i % len(prompts)] + f" ({i})", methods, sp)
    rss.append(rss_mb())
    same = sum(
        [r.text for r in a] == [r.text for r in b] for a, b in zip(solo["results"], together["results"])
    )
    errors = [r.error for rs in together["results"] + solo["results"] for r in rs if r.error]
    tokens = sum(r.counts.strong_tokens for rs in together["results"] for r in rs)
    return {
        "comparisons": len(prompts),
        "rows_per_comparison": rows_needed(methods),
        "peak_rows": loop.peak_rows,
        "one_at_a_time_s": round(solo["total"], 2),
        "joined_s": round(together["total"], 2),
        "ratio_joined_to_one_at_a_time": round(together["total"] / solo["total"], 3),
        "latency_one_at_a_time_s": {
            "own_mean": round(sum(solo["own"]) / len(prompts), 2),
            "waited_mean": round(sum(solo["waited"]) / len(prompts), 2),
            "waited_max": round(max(solo["waited"]), 2),
        },
        "latency_joined_s": {
            "waited_mean": round(sum(together["waited"]) / len(prompts), 2),
            "waited_max": round(max(together["waited"]), 2),
        },
        "same_texts_as_alone": f"{same}/{len(prompts)}",
        "strong_tokens_joined": tokens,
        "errors": errors,
        "rss_mb_after_warmup_after_both_runs_after_more": rss,
        "more_comparisons": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sentiment-positive")
    parser.add_argument("--engines", default="fast,llamacpp")
    parser.add_argument("--many", type=int, default=8, help="comparisons (different prompts)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--dtype", default=None, help="precision of transformers models (default: W2S_DTYPE, else auto)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch and llama.cpp threads")
    parser.add_argument("--max-rows", type=int, default=None, help="default: W2S_BATCH_ROWS (128)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="override the preset's T")
    parser.add_argument("--memory", type=int, default=0, help="more comparisons, then resident memory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["W2S_THREADS"] = str(args.threads)  # Settings.from_env() reads it
        THREADS["n"] = args.threads  # engines built here directly
    env = Settings.from_env()
    settings = replace(env, device=args.device, dtype=args.dtype or env.dtype)
    runner = build_runner(settings)
    preset = runner.preset(args.preset)
    from w2s_app.prompt_pool import pool_for

    prompts = pool_for(preset)[1 : 1 + args.many]
    given = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}
    plan = runner.plan(CompareRequest(prompts[0], preset.name, METHODS, given))
    methods, sp = plan.methods, plan.sampling
    pool = ModelPool(settings.device, settings.dtype)
    out: dict[str, Any] = {
        "preset": args.preset,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "cpu": cpu(),
        "dtype": pool.dtype,  # what the transformers models load in (`auto` resolved)
        "threads": torch.get_num_threads(),
        "max_new_tokens": sp.max_new_tokens,
        "methods": methods,
    }
    if not args.json:
        print(f"CPU: {out['cpu']}; device {out['device']}, transformers dtype {out['dtype']}", flush=True)
    max_rows = args.max_rows or settings.batch_rows or 128
    for name in [e for e in args.engines.split(",") if e]:
        models = load_models(settings, pool, preset, name)
        load_before = load()
        out[name] = throughput(make_engine(name, models), prompts, methods, sp, max_rows, args.memory)
        out[name]["load_average_before_after"] = [load_before, load()]
        if not args.json:
            print(name, json.dumps(out[name]), flush=True)
    if args.json:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
