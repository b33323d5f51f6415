"""Many raters at once: eight default comparisons one at a time vs joined into one decode loop.

Both runs go through the same `SharedLoop` on the same warm engine: one at a time, each comparison
is submitted when the previous one has answered (what a strictly sequential queue gives); joined,
all are submitted at once from their own threads and decode in one batch. Reported per engine:
total seconds, each comparison's latency counted from the moment all eight arrived (what the
last rater in line waits) and its own run time, the ratio joined / one at a time, and how many
comparisons gave exactly the texts they gave alone.

    python -m benchmarks.bench_joined                         # preset sentiment-positive, CPU
    python -m benchmarks.bench_joined --engines fast,llamacpp --many 8
    python -m benchmarks.bench_joined --device cuda --preset offline-random   # GPU (README)

The GPU run uses random weights in the offline models' shapes (`benchmarks/random_weights.py`):
the weights cannot travel there, and speed does not depend on their values (their answers never
end early, so every stream runs its whole budget).
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

from w2s_app.backends.local import ModelPool
from w2s_app.backends.roles import Role, RoleSpec
from w2s_app.config import Preset, Settings
from w2s_app.search import Models, SamplingParams, SharedLoop, rows_needed

METHODS = ["baseline", "bon", "w2s"]


def load_models(pool: ModelPool, preset: Preset) -> Models:
    """The preset's three local roles (adapters applied), without the app's runner."""

    def role(spec: RoleSpec) -> Role:
        if not spec.adapter:
            return Role(spec, pool.get(spec.source))
        from w2s_app.backends.adapters import adapter_off, pooled_adapted

        loaded = pooled_adapted(pool, spec.source, spec.adapter)
        return Role(spec, loaded if spec.use_adapter else adapter_off(loaded))

    return Models(strong=role(preset.strong), tuned=role(preset.tuned), untuned=role(preset.untuned))


def make_engine(name: str, models: Models) -> Any:
    """A joinable engine by name: 'fast' (transformers) or 'llamacpp' (GGUF in llama.cpp)."""
    from w2s_app.search.fast import FastEngine

    if name == "fast":
        return FastEngine(models)
    from w2s_app.search.fast import JoinedEngine
    from w2s_app.search.llamacpp_sampler import LlamaCppSampler

    from w2s_app.backends.llamacpp import llamacpp_model
    from w2s_app.engines.cached_scorer import CachedScorer

    lc = llamacpp_model(models.strong.loaded.source)
    return JoinedEngine(models, LlamaCppSampler(models, lc), CachedScorer(models))


def method_list(preset: Preset) -> list[tuple[str, dict[str, Any]]]:
    """The default comparison's methods at the preset's defaults."""
    from w2s_app.search import method_params

    return [(m, method_params(m, dict(preset.defaults))) for m in METHODS]


def sampling(preset: Preset) -> SamplingParams:
    """The preset's default sampling settings."""
    d = preset.defaults
    return SamplingParams(
        max_new_tokens=int(d.get("max_new_tokens", 128)),
        temperature=float(d.get("temperature", 0.7)),
        top_p=float(d.get("top_p", 1.0)),
    )


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
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch and llama.cpp threads")
    parser.add_argument("--max-rows", type=int, default=None, help="default: W2S_BATCH_ROWS (128)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="override the preset's T")
    parser.add_argument("--memory", type=int, default=0, help="more comparisons, then resident memory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["W2S_THREADS"] = str(args.threads)
    settings = replace(Settings.from_env(), device=args.device, dtype=args.dtype)
    preset = settings.preset(args.preset)
    from w2s_app.prompt_pool import pool_for

    prompts = pool_for(preset)[1 : 1 + args.many]
    models = load_models(ModelPool(args.device, args.dtype), preset)
    methods, sp = method_list(preset), sampling(preset)
    if args.max_new_tokens:
        sp = replace(sp, max_new_tokens=args.max_new_tokens)
    out: dict[str, Any] = {
        "preset": args.preset,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "threads": torch.get_num_threads(),
        "max_new_tokens": sp.max_new_tokens,
        "methods": methods,
    }
    max_rows = args.max_rows or settings.batch_rows or 128
    for name in [e for e in args.engines.split(",") if e]:
        out[name] = throughput(make_engine(name, models), prompts, methods, sp, max_rows, args.memory)
        if not args.json:
            print(name, json.dumps(out[name]), flush=True)
    if args.json:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
