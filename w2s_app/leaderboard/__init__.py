"""The leaderboard: Bradley-Terry fits of blind votes, style control, vote quality, and the cached boards."""

from .board import ELO, Leaderboard, compute_leaderboard, fit_bradley_terry, outcomes_from_votes
from .cache import BoardView, LeaderboardCache, build_board

__all__ = [
    "ELO",
    "BoardView",
    "Leaderboard",
    "LeaderboardCache",
    "build_board",
    "compute_leaderboard",
    "fit_bradley_terry",
    "outcomes_from_votes",
]
