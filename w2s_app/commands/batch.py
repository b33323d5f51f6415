"""`batch`: answer every prompt of a JSONL file, appending results as it goes; rerun to resume."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .. import batch_file
from .errors import CliError
from .run_options import add_run_options, request, result_rows, services

NAME = "batch"


def add_parser(subparsers: Any) -> None:
    """Register `batch` and its options."""
    p = subparsers.add_parser(NAME, help="answer every prompt of a JSONL file; resumes where it stopped")
    p.add_argument("--input", required=True, type=Path, help="JSONL with 'instruction' or 'prompt'")
    p.add_argument("--output", required=True, type=Path, help="JSONL written as it goes")
    p.add_argument("--format", choices=["full", "alpaca_eval"], default="full")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    add_run_options(p)


def run(args: argparse.Namespace) -> int:
    """Run every prompt of a file, appending results; rerun to resume. 1 when an answer failed."""
    from tqdm import tqdm

    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    try:
        prompts = batch_file.read_prompts(args.input)[: args.limit]
        done = batch_file.done_indices(args.output, args.format)
    except batch_file.BatchFileError as exc:
        raise CliError(str(exc)) from exc
    todo = [p for p in prompts if p["index"] not in done]
    runner = services(args).runner
    # Validate every setting once before the long run starts (the first prompt stands for all).
    if prompts:
        runner.plan(request(args, prompts[0]["prompt"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    with (
        args.output.open("a", encoding="utf-8") as fh,
        tqdm(total=len(prompts), initial=len(prompts) - len(todo), desc="prompts", unit="prompt") as bar,
    ):
        for item in todo:
            comp = runner.compare(request(args, item["prompt"]))
            failures += sum(not r.ok for r in comp.results)
            lines = batch_file.result_lines(args.format, item, comp, result_rows(comp, trace=True))
            # One write per prompt, so an interrupted run leaves whole prompts or a torn last line.
            fh.write("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
            fh.flush()
            bar.update(1)
    if args.format == "alpaca_eval":
        batch_file.write_alpaca_json(args.output)
    print(f"wrote {args.output} ({len(prompts)} prompts, {len(todo)} new, {failures} failed answers)")
    return 0 if failures == 0 else 1
