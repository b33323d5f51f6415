"""`generate`: answer one prompt with several methods and print each method's result."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .run_options import add_run_options, request, result_rows, services

NAME = "generate"


def add_parser(subparsers: Any) -> None:
    """Register `generate` and its options."""
    p = subparsers.add_parser(NAME, help="answer one prompt with several methods")
    p.add_argument("--prompt", required=True)
    add_run_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--trace", action="store_true", help="include the search trace in --json output")


def run(args: argparse.Namespace) -> int:
    """Answer one prompt and print each method's result; 1 when a method failed."""
    comp = services(args).runner.compare(request(args, args.prompt))
    if args.json:
        out = {
            "comparison_id": comp.id,
            "prompt": comp.prompt,
            "preset": comp.preset,
            "models": comp.models,
            "sampling": vars(comp.sampling),
            "seconds": round(comp.seconds, 3),
            "load_seconds": round(comp.load_seconds, 3),
            "results": result_rows(comp, args.trace),
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        for r in comp.results:
            score = "" if r.score is None else f" score={r.score:.3f}"
            print(f"=== {r.label}{score} tokens={r.counts.strong_tokens} seconds={r.seconds:.1f}")
            print((r.error and f"ERROR: {r.error}") or r.text.strip())
            print()
    return 0 if all(r.ok for r in comp.results) else 1
