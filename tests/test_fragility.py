"""The fragility of a ranking (leaderboard/fragility.py): the fewest votes whose removal swaps two
neighbours, checked on hand-built arenas where the answer is known and against brute force."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from w2s_app.leaderboard.board import board_from_outcomes
from w2s_app.leaderboard.fit import fit
from w2s_app.leaderboard.fragility import fewest_removals
from w2s_app.leaderboard.report import board_json, board_text


def arena(direct_wins: int, direct_losses: int, ties: int = 0, with_third: bool = True):
    """Arms 0 (A), 1 (B), 2 (C): A and B meet directly; C loses to each of them as often (no tilt)."""
    rows = [(0, 1, 1.0)] * direct_wins + [(0, 1, 0.0)] * direct_losses + [(0, 1, 0.5)] * ties
    if with_third:
        rows += [(0, 2, 1.0)] * 5 + [(1, 2, 1.0)] * 5
    a, b, y = (np.array(c) for c in zip(*rows))
    return a, b, y.astype(float), np.arange(len(rows))


def test_removing_exactly_k_votes_swaps_two_arms():
    for wins, losses in [(7, 4), (5, 1), (9, 8), (3, 0)]:
        a, b, y, votes = arena(wins, losses)
        # After wins - losses + 1 of A's wins over B go, B is ahead; with one fewer they are level.
        assert fewest_removals(a, b, y, votes, 3, 0, 1) == wins - losses + 1, (wins, losses)


def test_ties_count_less_than_wins_and_are_removed_after_them():
    a, b, y, votes = arena(4, 2, ties=3, with_third=False)
    # Removing A's 4 wins leaves 2 B wins and 3 ties: B ahead after 3 (4 - 2 + 1) removals of wins.
    assert fewest_removals(a, b, y, votes, 2, 0, 1) == 3


def brute_force(a, b, y, votes, n, upper, lower, most=4):
    """The true fewest (up to `most`) by trying every set of votes."""
    for k in range(1, most + 1):
        for drop in combinations(np.unique(votes), k):
            keep = ~np.isin(votes, drop)
            theta = fit(a[keep], b[keep], y[keep], n, with_cov=False).theta
            if theta[lower] - theta[upper] > 1e-9:
                return k
    return None


def test_the_count_is_the_true_fewest_on_small_random_arenas():
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(12):
        pairs = [tuple(rng.choice(3, 2, replace=False)) for _ in range(11)]
        a = np.array([p[0] for p in pairs])
        b = np.array([p[1] for p in pairs])
        y = rng.choice([0.0, 0.5, 1.0], size=len(pairs), p=[0.3, 0.2, 0.5])
        votes = np.arange(len(pairs))
        theta = fit(a, b, y, 3, with_cov=False).theta
        upper, lower = (int(i) for i in np.argsort(-theta)[:2])
        truth = brute_force(a, b, y, votes, 3, upper, lower)
        if truth is None:
            continue
        found = fewest_removals(a, b, y, votes, 3, upper, lower)
        assert found is not None and found >= truth  # never fewer than possible: it removes real votes
        assert found == truth, (found, truth)
        checked += 1
    assert checked >= 6  # most arenas have a swap within 4 removals


def test_the_board_the_command_and_the_json_carry_every_neighbour_pair():
    a, b, y, votes = arena(7, 4)
    names = ["w2s", "bon", "baseline"]
    outcomes = pd.DataFrame({"vote": votes, "a": [names[i] for i in a], "b": [names[i] for i in b],
                             "ga": 0, "gb": 0, "result": y})  # fmt: skip
    vote_rows = pd.DataFrame({"id": votes, "comparison_id": 0, "choice": "generation", "generation_id": 0,
                              "voter_id": "v"})  # fmt: skip
    gens = pd.DataFrame(
        {"id": [0], "comparison_id": [0], "label": ["w2s"], "status": ["done"], "position": [0]}
    )
    board = board_from_outcomes(outcomes, vote_rows, gens)
    rows = board_json(board)["neighbours"]
    assert (rows[0]["upper"], rows[0]["lower"], rows[0]["fragility"]) == ("w2s", "bon", 4)
    assert len(rows) == 2 and rows[1]["lower"] == "baseline"
    assert "fragility" in board_text(board)
