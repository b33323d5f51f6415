"""Cost of bon and w2s with every model on a server, split into sampling and scoring requests.

    python benchmarks/bench_remote_guides.py --strong http://127.0.0.1:8000/v1 --guides http://127.0.0.1:8001/v1

Runs the `api-remote-guides` preset at its defaults (the `api` preset's: 96 tokens, W,K,L = 2,2,30,
N = 4) for one prompt, one method at a time so their requests do not overlap, and prints per method:
seconds, sampling requests and seconds, scoring requests (the guides' echo requests, alignment
probes included) and seconds, strong tokens and guide tokens.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from w2s_app.backends.api_registry import forget_servers
from w2s_app.config import Settings
from w2s_app.engines.api_engine import ApiEngine
from w2s_app.engines.remote_scorer import RemoteGuidePair
from w2s_app.runner import CompareRequest
from w2s_app.search import run_methods
from w2s_app.wiring import build_runner

PROMPT = "Give three tips for staying healthy."


def main() -> None:
    """Measure bon and w2s, each alone, and print one JSON line per method."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--strong", required=True, help="strong server, .../v1")
    ap.add_argument("--guides", required=True, help="guide server, .../v1")
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    runner = build_runner(Settings.from_env())
    preset = runner.preset("api-remote-guides")
    preset = replace(
        preset,
        strong=replace(preset.strong, api_base=args.strong),
        tuned=replace(preset.tuned, api_base=args.guides),
        untuned=replace(preset.untuned, api_base=args.guides),
    )
    runner.preset = lambda name, p=preset: p  # type: ignore[method-assign]  # the servers given here
    plan = runner.plan(CompareRequest(args.prompt, preset.name, ["bon", "w2s"], {"seed": args.seed}))
    sp = plan.sampling
    for method, params in plan.methods:
        forget_servers()
        models = runner.engines.load(preset).models
        pair = RemoteGuidePair(models.tuned, models.untuned)
        start = time.perf_counter()
        (res,) = run_methods(ApiEngine(models, pair), args.prompt, [(method, params)], sp)
        total = time.perf_counter() - start
        row = {
            "method": res.label,
            "ok": res.ok,
            "error": res.error,
            "seconds": round(total, 1),
            "sampling_requests": res.counts.api_calls - pair.requests,
            "sampling_seconds": round(total - pair.seconds, 1),
            "scoring_requests": pair.requests,
            "scoring_seconds": round(pair.seconds, 1),
            "strong_tokens": res.counts.strong_tokens,
            "guide_tokens": res.counts.guide_tokens,
            "steps": len(res.trace),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
