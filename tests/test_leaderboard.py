"""Bradley-Terry leaderboard: recovers known strengths, handles ties, blind votes only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.boards import fit_board
from w2s_app.leaderboard.board import fit_bradley_terry, outcomes_from_votes

LABELS = ["baseline", "bon N4", "w2s W2 K2 L30"]


def simulate(strengths, n_votes, seed, tie_rate=0.0):
    """Votes over 3-way comparisons; the best answer is drawn by Plackett-Luce from the strengths."""
    rng = np.random.default_rng(seed)
    comps, gens, votes = [], [], []
    p = np.exp(strengths) / np.exp(strengths).sum()
    for c in range(n_votes):
        comps.append({"id": c, "preset": "offline"})
        for j, label in enumerate(LABELS):
            gens.append({"id": c * 10 + j, "comparison_id": c, "label": label, "status": "done"})
        if rng.random() < tie_rate:
            votes.append(
                {
                    "id": c,
                    "comparison_id": c,
                    "choice": "tie",
                    "generation_id": None,
                    "blind": True,
                    "voter_id": "v",
                }
            )
        else:
            j = rng.choice(3, p=p)
            votes.append(
                {
                    "id": c,
                    "comparison_id": c,
                    "choice": "generation",
                    "generation_id": c * 10 + j,
                    "blind": True,
                    "voter_id": "v",
                }
            )
    return pd.DataFrame(votes), pd.DataFrame(gens), pd.DataFrame(comps)


def test_recovers_known_strengths():
    true = np.array([-0.8, 0.0, 0.8])
    covered, total = 0, 0
    for seed in range(8):
        board = fit_board(*simulate(true, 600, seed))
        t = board.table.set_index("entity")
        # The ranking is right.
        assert list(board.table["entity"]) == LABELS[::-1]
        assert list(board.table["rank"]) == [1, 2, 3]
        # "Best of three" votes are pairwise BT outcomes with the same strengths (Luce's choice axiom).
        for label, value in zip(LABELS, true - true.mean(), strict=True):
            total += 1
            covered += t.loc[label, "strength_lo"] <= value <= t.loc[label, "strength_hi"]
    # Nominal 95% intervals: allow a few misses, never most.
    assert covered >= total * 0.8, (covered, total)


def test_ties_and_all_bad():
    votes, gens, comps = simulate(np.zeros(3), 30, 0, tie_rate=1.0)
    votes.loc[:9, "choice"] = "all_bad"
    outcomes = outcomes_from_votes(votes, gens)
    assert len(outcomes) == 30 * 3 and (outcomes["result"] == 0.5).all()
    board = fit_board(votes, gens, comps)
    assert board.counts == {"votes": 30, "comparisons": 30, "ties": 20, "all_bad": 10}
    assert np.allclose(board.table["strength"], 0, atol=1e-6)
    assert np.allclose(board.winrate.fillna(0.5).to_numpy(), 0.5)


def test_only_blind_votes_and_preset_filter():
    votes, gens, comps = simulate(np.array([0.0, 0.0, 3.0]), 50, 1)
    votes["blind"] = False
    assert fit_board(votes, gens, comps).table.empty
    votes["blind"] = True
    assert fit_board(votes, gens, comps, preset="other").table.empty
    board = fit_board(votes, gens, comps, preset="offline")
    assert board.table.iloc[0]["entity"] == "w2s W2 K2 L30"
    wr = board.winrate
    assert wr.loc["w2s W2 K2 L30", "baseline"] > 0.5 and wr.loc["baseline", "w2s W2 K2 L30"] < 0.5


def test_two_entities_match_closed_form():
    # With two entities the MLE is the log-odds of the observed win share (ties count half).
    outcomes = pd.DataFrame(
        [(i, "a", "b", 1.0) for i in range(27)]
        + [(100 + i, "a", "b", 0.5) for i in range(6)]
        + [(200 + i, "b", "a", 1.0) for i in range(7)],
        columns=["vote", "a", "b", "result"],
    )
    theta = fit_bradley_terry(outcomes, ["a", "b"])
    share = (27 + 3) / 40
    assert abs((theta[0] - theta[1]) - np.log(share / (1 - share))) < 1e-3


def test_weights_equal_repeated_rows():
    # The bootstrap weights votes by how often they were drawn; that must equal repeating them.
    rng = np.random.default_rng(3)
    names = ["x", "y", "z", "w"]
    rows = [(i, *rng.choice(names, 2, replace=False), float(rng.choice([0, 0.5, 1]))) for i in range(80)]
    outcomes = pd.DataFrame(rows, columns=["vote", "a", "b", "result"])
    weights = rng.integers(0, 4, len(outcomes))
    repeated = outcomes.loc[outcomes.index.repeat(weights)]
    np.testing.assert_allclose(
        fit_bradley_terry(outcomes, names, weights), fit_bradley_terry(repeated, names), atol=1e-5
    )
