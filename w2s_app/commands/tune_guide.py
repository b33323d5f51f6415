"""`tune-guide`: DPO-tune a LoRA adapter (the tuned side of a guide pair) from one source of pairs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..config import Settings
from ..wiring import build_services
from .errors import CliError

NAME = "tune-guide"
AT_LEAST_ONE = ("samples", "epochs", "batch_size", "max_tokens", "rank")


def add_parser(subparsers: Any) -> None:
    """Register `tune-guide` and its options."""
    p = subparsers.add_parser(NAME, help="DPO-tune a LoRA adapter: the tuned side of a guide pair")
    p.add_argument("--base", required=True, help="model source of the small guide (hub id, folder, pip:...)")
    p.add_argument("--out", required=True, type=Path, help="folder for the adapter and metadata.json")
    p.add_argument("--reward", help="vader, vader-positive, vader-negative, or module:function")
    p.add_argument("--prompts", type=Path, help="one prompt per line (with --reward)")
    p.add_argument("--samples", type=int, default=4, help="answers sampled per prompt (with --reward)")
    p.add_argument(
        "--sample-from",
        default=None,
        help="with --reward: model whose answers are ranked (default: --base); e.g. the strong model to steer",
    )
    p.add_argument(
        "--stop",
        action="append",
        default=[],
        help="with --reward: text that ends a sampled answer (repeatable)",
    )
    p.add_argument("--preferences", type=Path, help="JSONL with prompt, chosen, rejected")
    p.add_argument("--from-votes", action="store_true", help="pairs from the database's blind votes")
    p.add_argument("--preset", default=None, help="with --from-votes: only this preset's comparisons")
    p.add_argument("--template", default="chat", help="'chat' or plain text with {prompt}")
    p.add_argument("--eos", default=None, help="token that ends an answer (default: the tokenizer's EOS)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--max-tokens", type=int, default=64, help="answer tokens used per pair")
    p.add_argument("--rank", type=int, default=8, help="LoRA rank")
    p.add_argument(
        "--lora-layers", choices=("attention", "all-linear"), default="attention", help="where LoRA goes"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)


def run(args: argparse.Namespace) -> int:
    """Train a guide adapter from a reward, a preference file or the app's votes; print its summary."""
    from ..tuning.command import tune_guide

    for name in AT_LEAST_ONE:
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1")
    try:
        # The store as every process opens it (the composition root), only when --from-votes asks.
        summary = tune_guide(args, lambda: build_services(Settings.from_env()).store)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(summary, indent=2))
    print(f"adapter written to {args.out}")
    return 0
