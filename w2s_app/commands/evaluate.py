"""`evaluate`: mean gold reward per method over prompts and seeds (each comparison stored as any other)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .. import options
from ..runner import ComparisonResult
from .errors import CliError
from .run_options import add_run_options, comparison_settings, request, services

NAME = "evaluate"


def add_parser(subparsers: Any) -> None:
    """Register `evaluate` and its options."""
    p = subparsers.add_parser(NAME, help="mean gold reward per method over prompts and seeds")
    p.add_argument("--prompts", required=True, type=Path, help="one prompt per line")
    p.add_argument(
        "--reward", required=True, help="vader, vader-positive, vader-negative, or module:function"
    )
    p.add_argument("--seeds", type=int, default=1, help="seeds per prompt")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    p.add_argument("--json", action="store_true")
    add_run_options(p)


def run(args: argparse.Namespace) -> int:
    """Run the methods over the prompts (stored like any comparison) and print the reward table."""
    from tqdm import tqdm

    from ..evaluate import evaluate
    from ..tuning.command import read_prompts
    from ..tuning.rewards import load_reward

    if args.seeds < 1:
        raise CliError("--seeds must be at least 1")
    try:
        reward = load_reward(args.reward)
        prompts = read_prompts(args.prompts)[: args.limit]
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    runner = services(args).runner
    base = comparison_settings(args)
    # Paired evaluation: every method sees the same noise unless asked otherwise (less variance).
    base["noise"] = base["noise"] or "shared"
    first = options.SEED.check(base["seed"]) if base["seed"] is not None else 0
    if prompts:
        runner.plan(request(args, prompts[0], **base))  # every setting checked before the long run

    def compare(prompt: str, seed: int) -> ComparisonResult:
        return runner.compare(request(args, prompt, **{**base, "seed": first + seed}))

    with tqdm(total=len(prompts) * args.seeds, desc="answers", unit="prompt") as bar:
        table = evaluate(compare, prompts, args.seeds, reward, progress=lambda: bar.update(1))
    if args.json:
        print(
            json.dumps(
                {"preset": args.preset, "reward": args.reward, "table": table.to_dict(orient="records")}
            )
        )
    else:
        print(table.to_string(index=False))
    return 0
