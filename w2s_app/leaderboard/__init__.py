"""The leaderboard: Bradley-Terry fits of blind votes (with a prior and intervals that follow the
sample), head-to-head records, style control, vote quality, boards by source (people, a judge, both),
a judge's agreement with people, and the cached boards.
"""

from .agreement import Agreement, agreement_view
from .board import ELO, Leaderboard, fit_bradley_terry, outcomes_from_votes
from .cache import BoardView, LeaderboardCache, build_board
from .pairs import separation_text
from .report import add_source_argument, board_json, board_text
from .vote_sources import parse_source, resolve_source, source_options

__all__ = [
    "ELO",
    "Agreement",
    "BoardView",
    "Leaderboard",
    "LeaderboardCache",
    "add_source_argument",
    "agreement_view",
    "board_json",
    "board_text",
    "build_board",
    "fit_bradley_terry",
    "outcomes_from_votes",
    "parse_source",
    "resolve_source",
    "separation_text",
    "source_options",
]
