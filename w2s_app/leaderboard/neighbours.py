"""Every pair of neighbours on the board: their gap, roughly how many more votes would separate them
at the current rate, and how fragile their order is (the fewest votes whose removal swaps it)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from .fit import ELO, PRIOR_SD, Z95, Fit
from .fragility import MAX_REMOVED, fewest_removals

NEIGHBOUR_COLUMNS = [
    "upper",
    "lower",
    "difference",
    "difference_lo",
    "difference_hi",
    "more_votes",
    "fragility",
]


def more_votes_to_separate(diff: float, widths: float, votes: int) -> int | None:
    """Votes still needed until the two intervals stop overlapping, at the current rate (0: separated).

    Interval widths shrink as 1/sqrt(votes): k more votes separate the pair when
    diff > z * widths * sqrt(votes / (votes + k)). None for a tie (no number of votes separates it).
    """
    if diff > Z95 * widths:
        return 0
    if diff <= 1e-9:
        return None
    return max(1, math.ceil(votes * (Z95 * widths / diff) ** 2 - votes))


def neighbours(
    entities: list[str],
    result: Fit,
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    vote_ids: np.ndarray,
    prior_sd: float = PRIOR_SD,
    fragile: bool = True,
) -> pd.DataFrame:
    """One row per pair of neighbours, best first (`fragile=False`: no fragility column values)."""
    order = np.argsort(-result.theta, kind="stable")
    votes = len(np.unique(vote_ids))
    codes = np.unique(vote_ids, return_inverse=True)[1] if len(vote_ids) else vote_ids
    rows = []
    for i, j in itertools.pairwise(order):
        i, j = int(i), int(j)
        diff = float(result.theta[i] - result.theta[j])
        sd_diff = result.difference_sd(i, j)
        removed = fewest_removals(a, b, y, codes, len(entities), i, j, prior_sd) if fragile else None
        rows.append((
            entities[i], entities[j], round(ELO * diff, 1), round(ELO * (diff - Z95 * sd_diff), 1),
            round(ELO * (diff + Z95 * sd_diff), 1),
            more_votes_to_separate(diff, float(result.sd[i] + result.sd[j]), votes),
            removed if removed is not None or not fragile else f">{MAX_REMOVED}",
        ))  # fmt: skip
    return pd.DataFrame(rows, columns=NEIGHBOUR_COLUMNS)


def neighbours_text(table: pd.DataFrame) -> str:
    """The neighbours table for a terminal, with what its columns mean."""
    if table.empty:
        return ""
    return (
        "neighbours (difference in Elo with its 95% interval; more_votes: roughly how many more votes "
        "would separate them at the current rate; fragility: the fewest votes found whose removal puts "
        "the lower one ahead, see leaderboard/fragility.py):\n" + table.to_string(index=False)
    )
