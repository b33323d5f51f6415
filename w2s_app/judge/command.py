"""`python -m w2s_app judge` and `python -m w2s_app agreement`: argument parsing and the commands.

Bad input (unknown preset, unreachable server, bad --since, ...) prints one line and exits 2; a
run that hit server failures exits 1 after its summary; otherwise 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .ask import JudgeInputError

EXIT_BAD_INPUT = 2


def add_judge_parser(subparsers: Any) -> Callable[[argparse.Namespace], int]:
    """Register the `judge` subcommand; returns its handler, `handler(args, settings, store)`."""
    p = subparsers.add_parser(
        "judge", help="judge stored comparisons with a model on any OpenAI-compatible server (resumes)"
    )
    p.add_argument("--preset", required=True, help="judge this preset's comparisons")
    p.add_argument(
        "--judge-base",
        default=None,
        help="the judge's server, e.g. http://127.0.0.1:8080/v1 (default: OPENAI_BASE_URL)",
    )
    p.add_argument("--judge-model", required=True, help="model name on that server; votes as judge:<model>")
    p.add_argument(
        "--judge-key-env", default="OPENAI_API_KEY", help="environment variable holding the server's key"
    )
    p.add_argument("--limit", type=int, default=None, help="judge at most N comparisons (oldest first)")
    p.add_argument(
        "--since", default=None, help="only comparisons created since: 2026-01-31, ...T14:00, or 7d"
    )
    p.add_argument("--concurrency", type=int, default=4, help="comparisons judged at once (default 4)")
    p.add_argument("--max-tokens", type=int, default=256, help="token limit of one judge reply")
    p.add_argument(
        "--response-format",
        choices=("auto", "json_schema", "json_object", "none"),
        default="auto",
        help="how the JSON reply is enforced (auto: probe the server)",
    )
    p.add_argument(
        "--retry-failed", action="store_true", help="judge again comparisons whose replies were unreadable"
    )
    p.add_argument("--timeout", type=float, default=120.0, help="seconds for one request (default 120)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return cmd_judge


def add_agreement_parser(subparsers: Any) -> Callable[[argparse.Namespace], int]:
    """Register the `agreement` subcommand; returns its handler, `handler(args, settings, store)`."""
    p = subparsers.add_parser("agreement", help="how often a judge agrees with people (share, Cohen's kappa)")
    p.add_argument("--preset", default=None, help="only this preset's comparisons")
    p.add_argument("--judge", default=None, help="judge:<model> or the model (default: the only judge)")
    p.add_argument("--min-vote-seconds", type=float, default=0.0, help="drop people's votes faster than this")
    p.add_argument(
        "--drop-one-position", action="store_true", help="drop voters whose picks are one position"
    )
    p.add_argument("--json", action="store_true")
    return cmd_agreement


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_judge(args: argparse.Namespace, settings: Any, store: Any) -> int:
    """Judge new comparisons of one preset; prints a summary (or JSON). The entry point wires the store."""
    from ..config import ConfigError
    from .ask import JudgeAsk, prepare
    from .client import JudgeSetupError

    ask = JudgeAsk(
        preset=args.preset,
        base_url=args.judge_base,
        model=args.judge_model,
        limit=args.limit,
        since=args.since,
        concurrency=args.concurrency,
        retry_failed=args.retry_failed,
        key_env=args.judge_key_env,
        max_tokens=args.max_tokens,
        response_format=args.response_format,
        timeout=args.timeout,
    )
    try:
        run = prepare(settings, ask)
    except (JudgeInputError, JudgeSetupError, ConfigError) as exc:
        return _fail(str(exc))
    try:
        report = run.run(store, progress=not args.no_progress)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to judge the rest", file=sys.stderr)
        return 130
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 1 if report.errors else 0


def cmd_agreement(args: argparse.Namespace, settings: Any, store: Any) -> int:
    """Print the agreement of people's votes with one judge. The entry point wires the store."""
    from ..config import ConfigError
    from ..leaderboard.agreement import agreement_view
    from ..leaderboard.vote_sources import parse_source, resolve_source

    try:
        preset = settings.preset(args.preset).name if args.preset else ""
        if not 0 <= args.min_vote_seconds <= 3600:
            raise JudgeInputError("--min-vote-seconds must be between 0 and 3600")
        _, judge = parse_source(resolve_source(args.judge or "judge", store.judges(preset or None)))
        if judge is None:
            raise JudgeInputError("--judge must name a judge: judge:<model> or the model")
    except (JudgeInputError, ConfigError, ValueError) as exc:
        return _fail(str(exc).replace("--source judge", "--judge"))
    view = agreement_view(store, judge, preset, args.min_vote_seconds, args.drop_one_position)
    if args.json:
        print(json.dumps(view.to_dict(), indent=2))
    else:
        print(view.summary())
        if len(view.pairs):
            print("\n" + view.pairs.to_string(index=False))
    return 0
