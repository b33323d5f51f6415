"""`export`: write a table (comparisons, generations, votes, judgements, rewards) to CSV, JSONL or Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..arena.records import EXPORT_TABLES
from ..config import Settings
from ..leaderboard import parse_source
from ..wiring import build_services
from .errors import CliError

NAME = "export"


def add_parser(subparsers: Any) -> None:
    """Register `export` and its options."""
    p = subparsers.add_parser(NAME, help="write a table (" + ", ".join(EXPORT_TABLES) + ") to a file")
    p.add_argument("--what", choices=list(EXPORT_TABLES), required=True)
    p.add_argument("--format", choices=["csv", "jsonl", "parquet"], required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--source",
        default="humans",
        help="whose votes an export of votes holds: humans (default), judge:<model>, humans+judge:<model>, all",
    )


def run(args: argparse.Namespace) -> int:
    """Export one table (voter ids hashed with the deployment's secret salt, as the app's exports)."""
    services = build_services(Settings.from_env())
    store = services.store
    salt = services.identity.export_salt()
    try:
        parse_source(args.source if args.source != "all" else "humans")
        path = store.export(args.what, args.format, args.out, salt=salt, vote_source=args.source)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    print(f"wrote {store.count(args.what)} {args.what} to {path}")
    return 0
