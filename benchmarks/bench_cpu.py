"""CPU speed of the strong model and of a whole comparison, against llama.cpp on the same GGUF file.

Measured in one process, on the offline models (Gemma-3-270M Q4_K_M strong, SmolLM2-135M guides):
(a) ms per token of one baseline stream: our engines (transformers float32 `fast`; llama.cpp
    in-process `llamacpp`) against llama-cpp-python's own `Llama.create_completion` on the same
    file and thread count (what a CPU user would run instead);
(b) seconds of the default comparison (baseline + bon + w2s at the preset's defaults, warm, models
    loaded): our engines against the same work assembled from llama.cpp completions (every
    stream and search chunk sampled by `Llama.create_completion`, scored by our guides), with the
    guides' share of the time (guide ms per guide token);
(c) eight default comparisons (different prompts) one after another, per-comparison latency;
(d) the process's resident memory after 20 comparisons, to show it does not grow.

    python -m benchmarks.bench_cpu                    # preset sentiment-positive (the default)
    python -m benchmarks.bench_cpu --preset offline   # the instruction preset (T=96)
    python -m benchmarks.bench_cpu --json

Needs llama-cpp-python (requirements-dev.txt). Other work on the machine only adds time, so each
figure is the fastest of --repeat runs.
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

from w2s_app.backends.llamacpp import default_threads
from w2s_app.backends.local import resolve_source
from w2s_app.backends.openai_api import ApiRole, Choice, Usage
from w2s_app.config import Settings
from w2s_app.engines.api_engine import ApiEngine
from w2s_app.prompt_pool import pool_for
from w2s_app.runner import ENGINES, Runner, build_methods, build_sampling
from w2s_app.search import Models, SamplingParams, run_methods

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

    def complete(self, prompts, seeds, max_tokens, temperature, top_p, stop=()):  # type: ignore[no-untyped-def]
        """One completion per prompt, sequentially."""
        choices, usage = [], Usage()
        with self.lock:
            return self._complete(prompts, seeds, max_tokens, temperature, top_p, stop, choices, usage)

    def _complete(self, prompts, seeds, max_tokens, temperature, top_p, stop, choices, usage):  # type: ignore[no-untyped-def]
        for prompt, seed in zip(prompts, seeds):
            # A fresh cache per request: llama-cpp-python 0.3.36 aborts (GGML_ASSERT logits) when a
            # prompt repeats the cached tokens exactly, as best-of-N's samples do.
            self.llm.reset()
            self.llm.set_seed(seed)
            out = self.llm.create_completion(
                prompt, max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=list(stop) or None
            )
            c = out["choices"][0]
            n = out["usage"]["completion_tokens"]
            choices.append(Choice(c["text"], c["finish_reason"], n))
            usage.calls += 1
            usage.completion_tokens += n
        return choices, usage


def timed(fn, repeat: int) -> tuple[float, Any]:  # type: ignore[no-untyped-def]
    """Fastest wall time of `repeat` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


class ScoreTimer:
    """Wraps an engine's scorer to add up the seconds spent scoring."""

    def __init__(self, scorer: Any) -> None:
        self.scorer, self.seconds = scorer, 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.scorer, name)

    def _timed(self, name: str, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return getattr(self.scorer, name)(*args)
        finally:
            self.seconds += time.perf_counter() - start

    def score(self, *args: Any) -> Any:
        return self._timed("score", *args)

    def score_many(self, *args: Any) -> Any:
        return self._timed("score_many", *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sentiment-positive")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--tokens", type=int, default=64, help="tokens of the single-stream figure (a)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--engines", default="fast,llamacpp")
    parser.add_argument("--many", type=int, default=8, help="comparisons in a row for (c)")
    parser.add_argument("--memory", type=int, default=20, help="comparisons for the memory figure (d)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import llama_cpp

    runner = Runner(replace(Settings.from_env(), device="cpu"))
    preset = runner.preset(args.preset)
    models = runner.models(preset)
    gguf = resolve_source(preset.strong.source)[1]
    llm = llama_cpp.Llama(
        str(gguf), n_ctx=4096, n_threads=args.threads, n_threads_batch=args.threads, verbose=False
    )
    engines = [e for e in args.engines.split(",") if e]
    prompts = pool_for(preset)
    out: dict[str, Any] = {"preset": args.preset, "threads": args.threads, "cpu_count": os.cpu_count()}

    # (a) one stream, EOS and stop strings off so every run writes exactly --tokens tokens.
    plain = Models(
        strong=replace(
            models.strong,
            spec=replace(models.strong.spec, stop=()),
            loaded=replace(models.strong.loaded, eos_ids=()),
        ),
        tuned=models.tuned,
        untuned=models.untuned,
    )
    sp = SamplingParams(args.tokens, 0.7, 1.0, 0)
    prompt = prompts[0]
    per_token: dict[str, float] = {}
    for name in engines:
        secs, res = timed(
            lambda n=name: run_methods(ENGINES[n](plain), prompt, [("baseline", {})], sp), args.repeat
        )
        per_token[name] = 1000 * secs / res[0].counts.strong_tokens
    text = models.strong.prompt_text(prompt)

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

    # (b) the default comparison, warm.
    methods = build_methods(METHODS, {}, preset)
    sp = build_sampling({}, preset)
    comparison: dict[str, Any] = {}
    for name in engines:

        def one(n: str = name) -> Any:
            engine = ENGINES[n](models)
            engine.scorer = ScoreTimer(engine.scorer)
            results = run_methods(engine, prompt, methods, sp)
            return engine.scorer.seconds, results

        secs, (scoring, results) = timed(one, args.repeat)
        guide = sum(r.counts.guide_tokens for r in results)
        comparison[name] = {
            "seconds": round(secs, 2),
            "scoring_seconds": round(scoring, 2),
            "guide_ms_per_token": round(1000 * scoring / max(guide, 1), 2),
            "strong_tokens": sum(r.counts.strong_tokens for r in results),
            "guide_tokens": guide,
        }
    reference = Models(
        strong=ApiRole(preset.strong, LlamaCompletions(llm)), tuned=models.tuned, untuned=models.untuned
    )
    secs, results = timed(lambda: run_methods(ApiEngine(reference), prompt, methods, sp), args.repeat)
    comparison["llama.cpp completions + our guides"] = {
        "seconds": round(secs, 2),
        "strong_tokens": sum(r.counts.strong_tokens for r in results),
        "errors": [r.error for r in results if r.error],
    }
    out["default_comparison"] = comparison

    # (c) eight comparisons one after another (different prompts), on the fastest engine of (b).
    best = min(engines, key=lambda n: comparison[n]["seconds"])
    latencies = []
    start = time.perf_counter()
    for p in prompts[1 : 1 + args.many]:
        t = time.perf_counter()
        run_methods(ENGINES[best](models), p, methods, sp)
        latencies.append(round(time.perf_counter() - t, 2))
    out["eight_in_a_row"] = {
        "engine": best,
        "total_seconds": round(time.perf_counter() - start, 1),
        "latencies": latencies,
    }

    # (d) memory after 20 comparisons.
    proc = psutil.Process()
    before = proc.memory_info().rss
    for p in (prompts * 3)[1 + args.many : 1 + args.many + args.memory]:
        run_methods(ENGINES[best](models), p, methods, sp)
    out["rss_mb"] = {
        "after_warmup": round(before / 2**20),
        "after_20_more": round(proc.memory_info().rss / 2**20),
    }

    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"preset {args.preset}, {args.threads} threads")
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
