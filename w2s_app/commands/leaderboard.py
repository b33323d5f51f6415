"""`leaderboard`: print one source's Bradley-Terry board (people's by default) as a table or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..config import Settings
from ..leaderboard import add_source_argument, board_json, board_text, resolve_source
from ..leaderboard.views import BY_NAME as VIEW_FIELDS
from ..leaderboard.views import parse_view
from ..wiring import build_services
from .errors import CliError

NAME = "leaderboard"


def add_parser(subparsers: Any) -> None:
    """Register `leaderboard` and its view options."""
    p = subparsers.add_parser(NAME, help="Bradley-Terry leaderboard from blind votes (people's by default)")
    p.add_argument("--preset", default=None, help="only comparisons of this preset")
    p.add_argument("--json", action="store_true")
    add_source_argument(p)
    p.add_argument("--style-control", action="store_true", help="strengths net of answer length and markdown")
    p.add_argument("--min-vote-seconds", default="0", help=VIEW_FIELDS["min_vote_seconds"].help)
    p.add_argument(
        "--drop-one-position", action="store_true", help="drop voters whose picks are all one position"
    )
    p.add_argument(
        "--drop-followers",
        action="store_true",
        help="drop voters whose picks follow one method far above chance, voting fast",
    )


def run(args: argparse.Namespace) -> int:
    """Print the leaderboard of one source (people's by default) as a table or JSON."""
    services = build_services(Settings.from_env())
    preset = services.runner.preset(args.preset).name if args.preset else ""  # unknown: an error
    try:
        vote_source = resolve_source(args.source, services.store.judges(preset or None))
        given = {"preset": preset, "source": vote_source, "min_vote_seconds": args.min_vote_seconds,
                 "style_control": args.style_control, "drop_one_position": args.drop_one_position,
                 "drop_followers": args.drop_followers}  # fmt: skip
        view = parse_view(given, lambda name: name)  # the same reading as the page and the JSON route
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    board = services.board.get(view)  # the deployment's voter cap applies, as on the page
    print(
        json.dumps(board_json(board, args.preset), indent=2) if args.json else board_text(board, args.preset)
    )
    return 0
