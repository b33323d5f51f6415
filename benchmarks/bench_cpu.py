"""CPU speed of the strong model and of a whole comparison, against llama.cpp on the same GGUF file.

Measured in one process, on the offline models (Gemma-3-270M Q4_K_M strong, SmolLM2-135M guides):
(a) ms per token of one baseline stream: our engines (`fast`: transformers at W2S_DTYPE=float32, the
    oracles' precision; `llamacpp`: the CPU default, the xllamacpp wheel in-process) against
    llama-cpp-python's own `Llama.create_completion` on the same file and thread count (what a CPU
    user would run instead);
(b) seconds of the default comparison (baseline + bon + w2s at the preset's defaults, warm, models
    loaded): our engines, each with the guides as the app loads them for it (`fast`: transformers
    float32, the cached scorer; `llamacpp`: the GGUF guides in llama.cpp, engines/llamacpp_scorer.py),
    against the same work assembled from llama.cpp completions (every stream and search chunk
    sampled by `Llama.create_completion`, scored by our guides: the `llamacpp` engine's when it is
    measured, else the first engine's), with the guides' share of the time (guide ms per guide token);
(c) eight default comparisons (different prompts) one after another on one warm engine (the app
    keeps one per preset), per-comparison latency;
(d) the process's resident memory after 20 more comparisons, to show it does not grow.

    python -m benchmarks.bench_cpu                    # preset sentiment-positive (the default)
    python -m benchmarks.bench_cpu --preset offline   # the instruction preset (T=96)
    python -m benchmarks.bench_cpu --json
    python -m benchmarks.bench_cpu --tokens 8 --repeat 1 --many 1 --memory 1 --max-new-tokens 8  # smoke run

Needs llama-cpp-python (requirements-dev.txt; only the reference uses it). The CPU (model, cores,
AVX-512 / VNNI flags) and the load average are printed: other work on the machine only adds time,
so each figure is the fastest of --repeat runs, and a figure taken above a load of 1 on a 2-core
machine is provisional.
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

import psutil
import torch

from benchmarks.bench_app import cpu, load
from w2s_app.backends.api_http import Usage
from w2s_app.backends.llamacpp import default_threads
from w2s_app.backends.local import ModelPool, resolve_source
from w2s_app.backends.openai_api import Choice
from w2s_app.backends.roles import ApiRole, Models
from w2s_app.config import Preset, Settings
from w2s_app.contracts import SamplingParams
from w2s_app.engines.api_engine import ApiEngine
from w2s_app.prompt_pool import pool_for
from w2s_app.runner import CompareRequest
from w2s_app.search import run_methods
from w2s_app.wiring import build_runner, engine_for
from w2s_app.wiring.model_sources import local_scorer

METHODS = ["baseline", "bon", "w2s"]


class LlamaCompletions:
    """An in-process stand-in for an OpenAI completions client, backed by llama_cpp.Llama."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.lock = threading.Lock()  # the engine sends requests from several threads; one Llama serves one
        self.config = type("Config", (), {"model": "llama.cpp in-process"})()
        self.server = type("Server", (), {"chat_only": set()})()

    def describe(self) -> str:
        """Name for messages."""
        return "llama.cpp in-process"

    def complete(self, prompts, seeds, max_tokens, temperature, top_p, stop=(), min_tokens=0):  # type: ignore[no-untyped-def]
        """One completion per prompt, sequentially."""
        choices, usage = [], Usage()
        with self.lock:
            return self._complete(
                prompts, seeds, max_tokens, temperature, top_p, stop, min_tokens, choices, usage
            )

    def _complete(self, prompts, seeds, max_tokens, temperature, top_p, stop, min_tokens, choices, usage):  # type: ignore[no-untyped-def]
        import llama_cpp

        # `min_tokens` (asked while an answer is still blank): EOS banned for that many tokens, as a
        # server that honours it does.
        processors = (
            llama_cpp.LogitsProcessorList(
                [llama_cpp.MinTokensLogitsProcessor(min_tokens, self.llm.token_eos())]
            )
            if min_tokens
            else None
        )
        for prompt, seed in zip(prompts, seeds):
            # A fresh cache per request: llama-cpp-python 0.3.36 aborts (GGML_ASSERT logits) when a
            # prompt repeats the cached tokens exactly, as best-of-N's samples do.
            self.llm.reset()
            self.llm.set_seed(seed)
            out = self.llm.create_completion(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=top_p,
                stop=list(stop) or None,
                logits_processor=processors,
            )
            c = out["choices"][0]
            n = out["usage"]["completion_tokens"]
            choices.append(Choice(c["text"], c["finish_reason"], n))
            usage.calls += 1
            usage.completion_tokens += n
        return choices, usage


THREADS: dict[str, int | None] = {"n": None}  # --threads, for the engines this script builds itself


def timed(fn, repeat: int) -> tuple[float, Any]:  # type: ignore[no-untyped-def]
    """Fastest wall time of `repeat` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


class ScoreTimer:
    """Wraps a scorer (the Scorer contract) to add up the seconds spent scoring."""

    def __init__(self, scorer: Any) -> None:
        self.scorer, self.seconds = scorer, 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.scorer, name)

    def score_many(self, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.scorer.score_many(*args)
        finally:
            self.seconds += time.perf_counter() - start


def timed_engine(models: Models, name: str) -> tuple[Any, ScoreTimer]:
    """Engine `name` over the roles, its guides' own scorer wrapped in a ScoreTimer."""
    timer = ScoreTimer(local_scorer(models))
    return engine_for(models, name, timer, threads=THREADS["n"]), timer


def without_stops(models: Models) -> Models:
    """The same roles with the strong model's EOS and stop strings off (fixed-length streams)."""
    strong = models.strong
    return replace(
        models,
        strong=replace(strong, spec=replace(strong.spec, stop=()), loaded=replace(strong.loaded, eos_ids=())),
    )


def load_models(settings: Settings, preset: Preset, names: list[str]) -> dict[str, Models]:
    """The preset's roles as the composition root loads them for each engine (W2S_ENGINE=name): for
    `llamacpp` the GGUF roles in llama.cpp, for `fast` and `reference` in transformers. One model pool,
    so nothing loads twice."""
    pool = ModelPool(settings.device, settings.dtype)
    return {
        n: build_runner(replace(settings, engine=n), pool=pool).engines.load(preset).models for n in names
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sentiment-positive")
    parser.add_argument("--threads", type=int, default=default_threads(), help="torch and llama.cpp threads")
    parser.add_argument("--tokens", type=int, default=64, help="tokens of the single-stream figure (a)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--engines", default="fast,llamacpp")
    parser.add_argument("--many", type=int, default=8, help="comparisons in a row for (c)")
    parser.add_argument("--memory", type=int, default=20, help="comparisons for the memory figure (d)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="override the preset's T in (b)-(d)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["W2S_THREADS"] = str(args.threads)  # Settings.from_env() reads it
    THREADS["n"] = args.threads  # engines built here directly
    import llama_cpp

    # float32 explicitly: the transformers engine is measured at the oracles' precision, whatever
    # W2S_DTYPE=auto would pick on this CPU (benchmarks/bench_precision.py measures the others).
    settings = replace(Settings.from_env(), device="cpu", dtype="float32")
    runner = build_runner(settings)
    preset = runner.preset(args.preset)
    engines = [e for e in args.engines.split(",") if e]
    loaded = load_models(settings, preset, engines)
    gguf = resolve_source(preset.strong.source)[1]
    llm = llama_cpp.Llama(
        str(gguf), n_ctx=4096, n_threads=args.threads, n_threads_batch=args.threads, verbose=False
    )
    prompts = pool_for(preset)
    prompt = prompts[0]
    out: dict[str, Any] = {
        "preset": args.preset,
        "threads": args.threads,
        "cpu": cpu(),
        "load_average_at_start": load(),
    }

    # (a) one stream, EOS and stop strings off so every run writes exactly --tokens tokens.
    sp = SamplingParams(args.tokens, 0.7, 1.0, 0)
    per_token: dict[str, float] = {}
    for name in engines:
        engine = engine_for(without_stops(loaded[name]), name, threads=THREADS["n"])
        secs, res = timed(lambda e=engine: run_methods(e, prompt, [("baseline", {})], sp), args.repeat)
        if res[0].error:
            raise RuntimeError(f"{name}: {res[0].error}")
        per_token[name] = 1000 * secs / res[0].counts.strong_tokens
    text = loaded[engines[0]].strong.prompt_text(prompt)

    def llama_stream() -> int:
        llm.reset()
        got = llm.create_completion(
            text, max_tokens=args.tokens, temperature=0.7, logit_bias={llm.token_eos(): -1e9}
        )
        return got["usage"]["completion_tokens"]

    secs, n = timed(llama_stream, args.repeat)
    per_token["llama.cpp"] = 1000 * secs / n
    out["ms_per_token"] = {k: round(v, 1) for k, v in per_token.items()}
    out["ratio_to_llama_cpp"] = {k: round(v / per_token["llama.cpp"], 2) for k, v in per_token.items()}

    # (b) the default comparison, warm: one engine per name, kept for (c) and (d) as the app keeps one.
    given = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}
    plan = runner.plan(CompareRequest(prompt, preset.name, METHODS, given))
    methods, sp = plan.methods, plan.sampling
    out["load_average_before_b"] = load()
    comparison: dict[str, Any] = {}
    built: dict[str, Any] = {}
    for name in engines:
        engine, timer = built[name] = timed_engine(loaded[name], name)

        def one(e: Any = engine, t: ScoreTimer = timer) -> Any:
            t.seconds = 0.0
            return run_methods(e, prompt, methods, sp), t.seconds

        secs, (results, scoring) = timed(one, args.repeat)
        guide = sum(r.counts.guide_tokens for r in results)
        comparison[name] = {
            "seconds": round(secs, 2),
            "scoring_seconds": round(scoring, 2),
            "guide_ms_per_token": round(1000 * scoring / max(guide, 1), 2),
            "strong_tokens": sum(r.counts.strong_tokens for r in results),
            "guide_tokens": guide,
            "errors": [r.error for r in results if r.error],
        }
    guides = "llamacpp" if "llamacpp" in engines else engines[0]
    ours = loaded[guides]
    reference = Models(
        strong=ApiRole(preset.strong, LlamaCompletions(llm)), tuned=ours.tuned, untuned=ours.untuned
    )
    secs, results = timed(
        lambda: run_methods(ApiEngine(reference, local_scorer(ours)), prompt, methods, sp), args.repeat
    )
    comparison["llama.cpp completions + our guides"] = {
        "seconds": round(secs, 2),
        "guides_of": guides,
        "strong_tokens": sum(r.counts.strong_tokens for r in results),
        "errors": [r.error for r in results if r.error],
    }
    out["default_comparison"] = comparison
    out["max_new_tokens"] = sp.max_new_tokens

    # (c) comparisons one after another (different prompts), on the fastest engine of (b).
    best = min(engines, key=lambda n: comparison[n]["seconds"])
    engine = built[best][0]
    out["load_average_before_c"] = load()
    latencies = []
    start = time.perf_counter()
    for p in prompts[1 : 1 + args.many]:
        t = time.perf_counter()
        run_methods(engine, p, methods, sp)
        latencies.append(round(time.perf_counter() - t, 2))
    out["eight_in_a_row"] = {
        "engine": best,
        "total_seconds": round(time.perf_counter() - start, 1),
        "latencies": latencies,
    }

    # (d) memory after --memory more comparisons through the same engine.
    proc = psutil.Process()
    before = proc.memory_info().rss
    for p in (prompts * 3)[1 + args.many : 1 + args.many + args.memory]:
        run_methods(engine, p, methods, sp)
    out["rss_mb"] = {
        "after_warmup": round(before / 2**20),
        f"after_{args.memory}_more": round(proc.memory_info().rss / 2**20),
    }
    out["load_average_at_end"] = load()

    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"CPU: {out['cpu']}")
    print(
        f"preset {args.preset}, {args.threads} threads, T={sp.max_new_tokens}, load average "
        f"{out['load_average_at_start']} at start, {out['load_average_at_end']} at the end"
    )
    print(
        "(a) ms per token, one baseline stream:",
        out["ms_per_token"],
        "ratio to llama.cpp:",
        out["ratio_to_llama_cpp"],
    )
    print("(b) default comparison, warm:")
    for name, row in comparison.items():
        print(f"    {name}: {row}")
    print(f"(c) {args.many} comparisons in a row:", out["eight_in_a_row"])
    print(f"(d) resident memory (MB) before and after {args.memory} more comparisons:", out["rss_mb"])


if __name__ == "__main__":
    main()
