"""CPU speed and agreement of reduced precisions (W2S_DTYPE) against float32, in one process.

On the offline preset (Gemma-3-270M strong, SmolLM2-135M + LoRA guides), for float32 (the oracle's
precision, the reference run) and each other mode, on the `fast` engine (transformers; W2S_ENGINE=fast
whatever `auto` would pick, since W2S_DTYPE concerns transformers models only):
(a) ms per token of one baseline stream (EOS and stop strings off, --tokens tokens);
(b) seconds of the default comparison (baseline + bon + w2s at the preset's defaults, warm);
(c) guide ms per guide token inside (b);
then how far each mode's answers move from float32's on --prompts prompts of the pool: how many
answers are identical, and the largest difference of the guide score of float32's own answers
when the mode's guides score them (the same texts, so only the precision differs).
Runs of the modes are interleaved and each figure is the fastest of --repeat, so a busy machine
slows every mode alike. The CPU (model, cores, AVX-512 / VNNI / bf16 flags) and the load average are
printed with the figures. `--modes auto` adds what W2S_DTYPE=auto picks on this CPU (it may time a
decode step once, then it is cached).

    python -m benchmarks.bench_precision                       # sentiment-positive, bfloat16 and int8
    python -m benchmarks.bench_precision --modes int8 --json
    python -m benchmarks.bench_precision --modes int8 --prompts 1 --repeat 1 --tokens 8 --max-new-tokens 8  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.bench_app import cpu, load
from benchmarks.bench_cpu import METHODS, timed_engine, without_stops
from w2s_app.backends.local import ModelPool
from w2s_app.backends.roles import Models
from w2s_app.config import Settings
from w2s_app.contracts import SamplingParams, SearchResult
from w2s_app.engines.plain_scorer import sequence_logprob
from w2s_app.prompt_pool import pool_for
from w2s_app.runner import CompareRequest
from w2s_app.search import run_methods
from w2s_app.wiring import build_runner, engine_for

REFERENCE = "float32"
ENGINE = "fast"  # the transformers engine: the one W2S_DTYPE changes


THREADS: dict[str, int | None] = {"n": None}  # --threads, for the engines this script builds itself


def stream_ms(models: Models, prompt: str, tokens: int) -> float:
    """ms per token of one baseline stream of exactly `tokens` tokens."""
    sp = SamplingParams(tokens, 0.7, 1.0, 0)
    engine = engine_for(without_stops(models), ENGINE, threads=THREADS["n"])
    start = time.perf_counter()
    res = run_methods(engine, prompt, [("baseline", {})], sp)
    return 1000 * (time.perf_counter() - start) / res[0].counts.strong_tokens


def comparison(models: Models, prompt: str, methods: list, sp: SamplingParams) -> dict[str, Any]:
    """One default comparison: wall seconds, scoring seconds, guide tokens, and the results."""
    engine, timer = timed_engine(models, ENGINE)
    start = time.perf_counter()
    results = run_methods(engine, prompt, methods, sp)
    seconds = time.perf_counter() - start
    errors = [r.error for r in results if r.error]
    if errors:
        raise RuntimeError(f"comparison failed: {errors}")
    guide = sum(r.counts.guide_tokens for r in results)
    return {"seconds": seconds, "scoring": timer.seconds, "guide_tokens": guide, "results": results}


def score_of(models: Models, prompt: str, result: SearchResult) -> float:
    """The guide pair's score of an answer, computed by the plain scorer (the reference)."""
    plus, _ = sequence_logprob(models.tuned, prompt, result.text, result.eos)
    minus, _ = sequence_logprob(models.untuned, prompt, result.text, result.eos)
    return plus - minus


def agreement(ref: Models, mode: Models, prompt: str, ref_res: list, mode_res: list) -> dict[str, Any]:
    """Identical answers, and the largest score difference on float32's own answers."""
    same = sum(a.text == b.text for a, b in zip(ref_res, mode_res))
    diffs = [abs(score_of(ref, prompt, r) - score_of(mode, prompt, r)) for r in ref_res]
    return {"identical": same, "answers": len(ref_res), "max_score_diff": max(diffs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sentiment-positive")
    parser.add_argument(
        "--modes", default="bfloat16,int8", help="compared with float32 (auto: what W2S_DTYPE=auto picks)"
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--tokens", type=int, default=64, help="tokens of the single-stream figure (a)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=3, help="prompts for the agreement figures")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="override the preset's T in (b) and the agreement runs",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["W2S_THREADS"] = str(args.threads)  # Settings.from_env() reads it
    THREADS["n"] = args.threads  # engines built here directly
    modes = [REFERENCE, *(m for m in args.modes.split(",") if m and m != REFERENCE)]
    base = replace(Settings.from_env(), device="cpu", engine=ENGINE)
    loaded: dict[str, Models] = {}
    resolved: dict[str, str] = {}
    for mode in modes:  # each mode its own runner, so its own model pool in its precision
        pool = ModelPool("cpu", mode)
        runner = build_runner(replace(base, dtype=mode), pool=pool)
        preset = runner.preset(args.preset)
        loaded[mode] = runner.engines.load(preset).models
        resolved[mode] = pool.dtype
    prompts = pool_for(preset)[: args.prompts]
    given = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}
    plan = runner.plan(CompareRequest(prompts[0], preset.name, METHODS, given))
    methods, sp = plan.methods, plan.sampling

    best: dict[str, dict[str, float]] = {m: {"ms": float("inf"), "seconds": float("inf")} for m in modes}
    answers: dict[str, list[list[SearchResult]]] = {m: [] for m in modes}
    load_before = load()
    for i in range(args.repeat):
        for mode in modes:  # interleaved: load on the machine hits every mode alike
            models = loaded[mode]
            best[mode]["ms"] = min(best[mode]["ms"], stream_ms(models, prompts[0], args.tokens))
            run = comparison(models, prompts[0], methods, sp)
            if run["seconds"] < best[mode]["seconds"]:
                best[mode].update(
                    seconds=run["seconds"], guide_ms=1000 * run["scoring"] / max(run["guide_tokens"], 1)
                )
            if i == 0:
                answers[mode].append(run["results"])
    for mode in modes:
        for prompt in prompts[1:]:
            answers[mode].append(
                run_methods(engine_for(loaded[mode], ENGINE, threads=THREADS["n"]), prompt, methods, sp)
            )

    ref = best[REFERENCE]
    out: dict[str, Any] = {
        "preset": args.preset,
        "engine": ENGINE,
        "threads": args.threads,
        "max_new_tokens": sp.max_new_tokens,
        "cpu": cpu(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "load_before_timing": load_before,
    }
    for mode in modes:
        row: dict[str, Any] = {k: round(v, 2) for k, v in best[mode].items()}
        row |= {f"{k}_vs_float32": round(best[mode][k] / ref[k], 2) for k in ("ms", "seconds", "guide_ms")}
        agree = [
            agreement(loaded[REFERENCE], loaded[mode], p, answers[REFERENCE][j], answers[mode][j])
            for j, p in enumerate(prompts)
        ]
        row["identical_answers"] = f"{sum(a['identical'] for a in agree)}/{sum(a['answers'] for a in agree)}"
        row["max_score_diff_same_text"] = round(max(a["max_score_diff"] for a in agree), 4)
        if resolved[mode] != mode:
            row["resolved_to"] = resolved[mode]
        out[mode] = row
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"CPU: {out['cpu']}")
    print(
        f"preset {args.preset}, engine {ENGINE}, {args.threads} threads, T={sp.max_new_tokens}, "
        f"load average {load_before} before timing, {out['load_average']} at the end"
    )
    for mode in modes:
        print(f"  {mode}: {out[mode]}")


if __name__ == "__main__":
    main()
