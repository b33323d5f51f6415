"""Speed of the search engines against the algorithm's physical limit, measured in one process.

For each model set (tiny random models, so outputs can be long; the real offline models):
- w2s / limit: weak-to-strong search (W,K,L,T) on the fast engine against the least work the
  algorithm needs: batched plain sampling of W*K streams that sample as many strong tokens as the
  search did, plus one batched scoring pass of both guides over the finished streams;
- reference / fast: the same search on the plain reference engine and on the fast one;
- together / alone: baseline + best-of-N (N=W*K) + w2s in one run against w2s alone;
- cost vs T: the fast w2s at several budgets, with the most KV-cache memory the engine held.

    python -m benchmarks.bench_search --threads 1 --repeat 2  # everything (about 10 minutes)
    python -m benchmarks.bench_search --quick                 # tiny models, shortest budgets (a smoke run, ~10 s)
    python -m benchmarks.bench_search --models offline --t 64,128 --ref-t 64 --json

One torch thread gives steadier figures on a shared machine (competing processes make spinning
OpenMP threads stall); --repeat keeps the fastest of several runs of each figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the benchmark never downloads anything
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from tests.tiny_models import SMOL, build_tiny, tiny_set
from w2s_app.backends.local import ModelPool
from w2s_app.backends.roles import Models, Role, RoleSpec
from w2s_app.config import Settings
from w2s_app.contracts import SamplingParams
from w2s_app.engines.kv import empty_cache
from w2s_app.engines.plain_scorer import batch_logprobs
from w2s_app.engines.token_choice import choose_tokens
from w2s_app.search import run_methods
from w2s_app.wiring import engine_for

PROMPT = "Give three tips for staying healthy."
PLAIN = "Question: {prompt}\nAnswer:"


@dataclass
class Run:
    """One timed run."""

    name: str
    seconds: float
    strong_tokens: int
    guide_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "name": self.name,
            "seconds": round(self.seconds, 3),
            "strong_tokens": self.strong_tokens,
            "strong_tok_s": round(self.strong_tokens / self.seconds, 1),
            "guide_tokens": self.guide_tokens,
            "guide_tok_s": round(self.guide_tokens / self.seconds, 1),
            **self.extra,
        }


def tiny_models(pool: ModelPool) -> Models:
    """Tiny random models over the SmolLM2 tokenizer; the strong head gives EOS no weight, so answers
    run to the token budget and the figures scale to long outputs."""
    paths = tiny_set()
    strong = build_tiny(SMOL, paths["tuned"].parent / "strong_long", seed=5, eos_weight=0.0)

    def role(path: Path, template: str) -> Role:
        return Role(RoleSpec(str(path), template), pool.get(str(path)))

    return Models(role(strong, PLAIN), role(paths["tuned"], "chat"), role(paths["untuned"], "chat"))


def offline_models(pool: ModelPool) -> Models:
    """The real offline preset: Gemma-3-270M steered by SmolLM2-135M-Instruct.

    The strong model's EOS and stop strings are switched off here, so every stream runs to the
    token budget and the cost can be read against T (with them on it stops after ~50 tokens).
    """
    preset = Settings.from_env().preset("offline")
    loaded = replace(pool.get(preset.strong.source), eos_ids=())
    return Models(
        strong=Role(replace(preset.strong, stop=(), eos=None), loaded),
        tuned=Role(preset.tuned, pool.get(preset.tuned.source)),
        untuned=Role(preset.untuned, pool.get(preset.untuned.source)),
    )


class MemoryWatch:
    """The fast engine, recording the most KV-cache bytes its stores held after any call."""

    def __init__(self, models: Models) -> None:
        self.engine = engine_for(models, "fast")
        self.abilities, self.stops = self.engine.abilities, self.engine.stops
        self.peak_bytes = 0

    hooks = property(lambda self: self.engine.hooks, lambda self, v: setattr(self.engine, "hooks", v))

    def answer_ready(self, asked: list) -> list:
        """Answer, then measure the cached states."""
        out = self.engine.answer_ready(asked)
        total = 0
        for state in self.engine.sampler.starts.kept.states.values():
            total += sum(k.nbytes + v.nbytes for k, v in state.kv)
        for pair in self.engine.scorer.guide_states.states.values():
            total += sum(k.nbytes + v.nbytes for g in pair for k, v in g.kv)
        self.peak_bytes = max(self.peak_bytes, total)
        return out


REPEAT = 1  # timed runs per measurement; the fastest counts (other work on the machine only adds time)


def timed_methods(name: str, make: Any, methods: list, sp: SamplingParams) -> tuple[Run, list, Any]:
    """Run methods through the driver (a fresh engine from `make()` each repeat) and total their work."""
    seconds = math.inf
    for _ in range(REPEAT):
        fresh = make()
        start = time.perf_counter()
        results = run_methods(fresh, PROMPT, methods, sp)
        seconds = min(seconds, time.perf_counter() - start)
    for r in results:
        if not r.ok:
            raise RuntimeError(f"{name}: {r.label} failed: {r.error}")
    strong = sum(r.counts.strong_tokens for r in results)
    guide = sum(r.counts.guide_tokens for r in results)
    return Run(name, seconds, strong, guide), results, fresh


def limit_run(models: Models, sp: SamplingParams, streams: int, length: int) -> Run:
    """The fastest of REPEAT limit runs."""
    runs = [limit_once(models, sp, streams, length) for _ in range(REPEAT)]
    return min(runs, key=lambda r: r.seconds)


@torch.inference_mode()
def limit_once(models: Models, sp: SamplingParams, streams: int, length: int) -> Run:
    """The physical limit: prompt prefilled once, `streams` rows decoded together for `length` tokens
    (no early stop), then one batched pass of each guide over the finished texts."""
    start = time.perf_counter()
    strong: Role = models.strong
    dev = strong.loaded.device
    ids = strong.prompt_ids(PROMPT)
    cache = empty_cache()
    out = strong.model(input_ids=torch.tensor([ids], device=dev), past_key_values=cache, use_cache=True)
    cache.batch_repeat_interleave(streams)
    logits = out.logits[:, -1].expand(streams, -1)
    rows: list[list[int]] = [[] for _ in range(streams)]
    for pos in range(length):
        toks = choose_tokens(logits, [(sp.seed, s, pos) for s in range(streams)], sp.temperature, sp.top_p)
        for row, tok in zip(rows, toks):
            row.append(tok)
        if pos == length - 1:
            break
        step = torch.tensor([[t] for t in toks], device=dev)
        logits = strong.model(input_ids=step, past_key_values=cache, use_cache=True).logits[:, -1]
    texts = [strong.decode(r) for r in rows]
    guide_tokens = 0
    for guide in (models.tuned, models.untuned):
        _, n = batch_logprobs(guide, PROMPT, texts, [False] * streams, padding_side="left")
        guide_tokens += n
    return Run("limit", time.perf_counter() - start, streams * length, guide_tokens)


def bench_set(label: str, models: Models, args: argparse.Namespace) -> dict[str, Any]:
    """All measurements on one model set."""
    w, k, l_ = args.w, args.k, args.l
    w2s = [("w2s", {"w": w, "k": k, "l": l_})]
    sp_main = SamplingParams(max_new_tokens=args.main_t, temperature=args.temperature, seed=args.seed)
    out: dict[str, Any] = {"models": label}
    # Warm up kernels and caches so the first timed run is not penalised.
    run_methods(engine_for(models, "fast"), PROMPT, w2s, SamplingParams(8, args.temperature, 1.0, args.seed))

    fast_runs: dict[int, tuple[Run, list]] = {}

    def fast_at(t: int) -> tuple[Run, list]:
        """The fast w2s at budget t, measured once and reused by every table."""
        if t not in fast_runs:
            sp = SamplingParams(max_new_tokens=t, temperature=args.temperature, seed=args.seed)
            run, res, engine = timed_methods(f"w2s fast T{t}", lambda: MemoryWatch(models), w2s, sp)
            run.extra["kv_cache_mb"] = round(engine.peak_bytes / 2**20, 2)
            fast_runs[t] = (run, res)
        return fast_runs[t]

    fast, _ = fast_at(args.main_t)
    per_stream = max(1, math.ceil(fast.strong_tokens / (w * k)))
    limit = limit_run(models, sp_main, w * k, per_stream)
    out["limit"] = {
        "setting": f"W{w} K{k} L{l_} T{args.main_t}",
        "w2s": fast.row(),
        "limit": limit.row(),
        "w2s_over_limit": round(fast.seconds / limit.seconds, 3),
    }
    _print(
        label, f"w2s / limit at W{w} K{k} L{l_} T{args.main_t}", [fast, limit], fast.seconds / limit.seconds
    )

    together, _, _ = timed_methods(
        "baseline+bon+w2s fast",
        lambda: engine_for(models, "fast"),
        [("baseline", {}), ("bon", {"n": w * k}), *w2s],
        sp_main,
    )
    out["together"] = {
        "together": together.row(),
        "w2s_alone": fast.row(),
        "together_over_alone": round(together.seconds / fast.seconds, 3),
    }
    _print(label, "all three together / w2s alone", [together, fast], together.seconds / fast.seconds)

    out["reference"] = []
    for t in args.ref_t:
        sp = SamplingParams(max_new_tokens=t, temperature=args.temperature, seed=args.seed)
        ref, ref_res, _ = timed_methods(
            f"w2s reference T{t}", lambda: engine_for(models, "reference"), w2s, sp
        )
        fst, fast_res = fast_at(t)
        same = ref_res[0].text == fast_res[0].text
        out["reference"].append(
            {
                "t": t,
                "reference": ref.row(),
                "fast": fst.row(),
                "reference_over_fast": round(ref.seconds / fst.seconds, 3),
                "same_text": same,
                "score_diff": abs((ref_res[0].score or 0.0) - (fast_res[0].score or 0.0)),
            }
        )
        _print(label, f"reference / fast at T{t} (same text: {same})", [ref, fst], ref.seconds / fst.seconds)

    out["cost_vs_t"] = []
    for t in args.t:
        run, _ = fast_at(t)
        run.extra["ms_per_strong_token"] = round(1000 * run.seconds / max(1, run.strong_tokens), 2)
        out["cost_vs_t"].append({"t": t, **run.row()})
        _print(label, f"cost at T{t}", [run], None)
    return out


def _print(label: str, title: str, runs: list[Run], ratio: float | None) -> None:
    """One block of the human-readable table."""
    if _QUIET:
        return
    print(f"[{label}] {title}" + (f": ratio {ratio:.2f}" if ratio is not None else ""), flush=True)
    for r in runs:
        row = r.row()
        extra = "".join(f"  {k} {v}" for k, v in r.extra.items())
        print(
            f"    {r.name:<24} {row['seconds']:>8.2f} s  strong {row['strong_tokens']:>6} tok"
            f" {row['strong_tok_s']:>8.1f}/s  guide {row['guide_tokens']:>6} tok {row['guide_tok_s']:>8.1f}/s{extra}",
            flush=True,
        )


_QUIET = False


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="tiny,offline", help="model sets: tiny, offline (comma separated)")
    p.add_argument("--t", type=_ints, default=None, help="budgets for cost vs T (default 64,128,256,512)")
    p.add_argument("--ref-t", type=_ints, default=None, help="budgets for reference / fast")
    p.add_argument("--main-t", type=int, default=None, help="budget for w2s / limit and together (256)")
    p.add_argument("--w", type=int, default=2)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--l", type=int, default=30)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--repeat", type=int, default=1, help="timed runs per figure; the fastest counts")
    p.add_argument("--quick", action="store_true", help="tiny models, short budgets")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table or one JSON object."""
    global _QUIET, REPEAT
    args = parse_args(argv)
    _QUIET = args.json
    REPEAT = max(1, args.repeat)
    if args.threads:
        torch.set_num_threads(args.threads)
    sets = [s.strip() for s in args.models.split(",") if s.strip()]
    if args.quick:
        sets = [s for s in sets if s == "tiny"] or ["tiny"]
    unknown = set(sets) - {"tiny", "offline"}
    if unknown:
        print(f"unknown model set(s): {', '.join(sorted(unknown))}; choose tiny, offline", file=sys.stderr)
        return 2
    pool = ModelPool(device="cpu", dtype="float32")
    report: dict[str, Any] = {
        "prompt": PROMPT,
        "threads": torch.get_num_threads(),
        "repeat": REPEAT,
        "sets": [],
    }
    start = time.perf_counter()
    for label in sets:
        opts = argparse.Namespace(**vars(args))
        # The reference engine re-reads everything every chunk: on the real models on a small CPU
        # it is run at the shortest budget only, to keep the whole benchmark near 10 minutes.
        defaults = {
            "tiny": ([64, 128, 256, 512], [128, 256, 512], 256),
            "offline": ([64, 128, 256], [128], 256),
        }[label]
        if args.quick:
            defaults = ([32, 64], [64], 32)  # a smoke run: every engine and table, shortest budgets
        opts.t = args.t or defaults[0]
        opts.ref_t = args.ref_t or defaults[1]
        opts.main_t = args.main_t or defaults[2]
        load = time.perf_counter()
        models = tiny_models(pool) if label == "tiny" else offline_models(pool)
        if not args.json:
            print(f"[{label}] models loaded in {time.perf_counter() - load:.1f} s", flush=True)
        report["sets"].append(bench_set(label, models, opts))
    report["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"total {report['seconds']} s, {report['threads']} torch threads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
