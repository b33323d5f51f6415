"""The board as text and JSON for the command line, and the --source option every board command takes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .board import TABLE_COLUMNS, Leaderboard
from .cost import cost_text
from .gold import gold_text
from .neighbours import neighbours_text
from .pairs import separation_text

SOURCE_HELP = (
    "whose votes: humans (default), judge:<model> (an automatic judge), humans+judge:<model> (both); "
    "'judge' and 'both' when one judge voted"
)


def add_source_argument(parser: argparse.ArgumentParser) -> None:
    """Add --source (whose votes the board is fitted on) to a parser."""
    parser.add_argument("--source", default="humans", help=SOURCE_HELP)


def board_json(board: Leaderboard, preset: str | None = None) -> dict[str, Any]:
    """Everything the board holds, as JSON-ready values."""
    return {
        "preset": preset,
        "source": board.vote_source,
        "prior_elo": board.prior_elo,
        "style": board.style,
        "counts": board.counts,
        "table": json.loads(board.table.to_json(orient="records")),
        "winrate": json.loads(board.winrate.to_json(orient="index")) if len(board.winrate) else {},
        "pairs": json.loads(board.pairs.to_json(orient="records")) if len(board.pairs) else [],
        "separation": board.separation,
        "costs": json.loads(board.costs.to_json(orient="records")) if len(board.costs) else [],
        "compute_matched": json.loads(board.matched.to_json(orient="records")) if len(board.matched) else [],
        "gold": [view.to_dict() for view in board.gold],
        "neighbours": json.loads(board.neighbours.to_json(orient="records")) if len(board.neighbours) else [],
        "judges": board.judges,
        "agreement": board.agreement.to_dict() if board.agreement is not None else None,
    }


def board_text(board: Leaderboard, preset: str | None = None) -> str:
    """The table, counts, style coefficients, head-to-head records and the top pair, for a terminal."""
    if board.table.empty:
        whose = "blind votes" if board.vote_source == "humans" else f"votes from {board.vote_source}"
        return f"no {whose} yet" + (f" for preset {preset!r}" if preset else "")
    c = board.counts
    lines = [
        board.table[[*TABLE_COLUMNS, *(["arm"] if "arm" in board.table else [])]].to_string(index=False),
        f"\n{c['votes']} votes ({c['ties']} ties, {c['all_bad']} all bad); source: {board.vote_source}; "
        f"prior: scores start level, spread {board.prior_elo:g} Elo",
    ]
    if board.style:
        lines.append("style coefficients: " + ", ".join(f"{k} {v:+.3f}" for k, v in board.style.items()))
    if len(board.pairs):
        pairs = board.pairs.rename(columns={"share": "a_share", "share_lo": "lo", "share_hi": "hi"})
        lines += ["\nhead to head (a's wins, losses, ties; a's share of decided, 95% Wilson interval):",
                  pairs.to_string(index=False)]  # fmt: skip
    if board.separation:
        lines.append("\n" + separation_text(board.separation))
    if len(board.neighbours):
        lines.append("\n" + neighbours_text(board.neighbours))
    if len(board.costs):
        lines.append("\n" + cost_text(board.costs, board.matched))
    if board.gold:
        lines.append("\n" + gold_text(board.gold))
    if board.agreement is not None:
        lines.append("\n" + board.agreement.summary())
    return "\n".join(lines)
