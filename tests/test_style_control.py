"""Style control on simulated votes: raters who prefer longer answers inflate long-winded methods in
the plain Bradley-Terry fit; the style-controlled fit recovers the length-free strengths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.boards import fit_board
from w2s_app.leaderboard.style import style_features

TRUE = {"m0": 0.6, "m1": 0.2, "m2": -0.2, "m3": -0.6}  # length-free log-strengths, mean zero
LENGTH = {"m0": 150, "m1": 300, "m2": 600, "m3": 1200}  # the weaker, the wordier


def simulate(n_votes: int = 3000, gamma: float = 2.5, seed: int = 2):
    """Two answers per comparison; P(a wins) = sigmoid(theta_a - theta_b + gamma * (len_a - len_b) / (len_a + len_b))."""
    rng = np.random.default_rng(seed)
    names = list(TRUE)
    votes, gens, comps, texts = [], [], [], {}
    gid = 0
    for cid in range(n_votes):
        a, b = rng.choice(names, 2, replace=False)
        ids = []
        for pos, name in enumerate((a, b)):
            gid += 1
            texts[gid] = "x" * max(1, int(LENGTH[name] * rng.lognormal(0, 0.4)))
            gens.append((gid, cid, name, "done", pos))
            ids.append(gid)
        la, lb = len(texts[ids[0]]), len(texts[ids[1]])
        d = TRUE[a] - TRUE[b] + gamma * (la - lb) / (la + lb)
        winner = ids[0] if rng.random() < 1 / (1 + np.exp(-d)) else ids[1]
        votes.append((cid, cid, "generation", winner, True, f"v{cid % 50}", 10.0))
        comps.append((cid, "sim"))
    v = pd.DataFrame(votes, columns=["id", "comparison_id", "choice", "generation_id", "blind", "voter_id",
                                     "seconds_shown"])  # fmt: skip
    g = pd.DataFrame(gens, columns=["id", "comparison_id", "label", "status", "position"])
    c = pd.DataFrame(comps, columns=["id", "preset"])
    return v, g, c, texts


def covered(table: pd.DataFrame) -> dict[str, bool]:
    return {r.entity: r.strength_lo <= TRUE[r.entity] <= r.strength_hi for r in table.itertuples()}


def test_style_control_recovers_length_free_strengths_and_plain_fit_does_not():
    # One fixed draw: four 95% intervals all cover their truth only about 80% of the time, so a
    # seed is fixed here; the test below checks the estimates over several draws.
    v, g, c, texts = simulate()
    plain = fit_board(v, g, c)
    assert not all(covered(plain.table).values())  # the plain fit is pulled toward the long answers
    styled = fit_board(v, g, c, texts=texts, style_control=True)
    assert all(covered(styled.table).values()), styled.table
    assert styled.style["length"] > 0  # raters' taste for length is found, not hidden in the strengths
    assert list(styled.table["entity"]) == ["m0", "m1", "m2", "m3"]
    assert plain.table.sort_values("score", ascending=False)["entity"].iloc[0] != "m0"


def test_style_controlled_estimates_are_unbiased_over_draws():
    from w2s_app.leaderboard.style import style_outcomes, style_strengths

    names = list(TRUE)
    styled, plain = [], []
    for seed in range(8):
        v, g, c, texts = simulate(seed=seed)
        theta = style_strengths(style_outcomes(v, g, texts), names, n_boot=0)[0]
        styled.append(theta)
        table = fit_board(v, g, c).table.set_index("entity")
        plain.append(table.loc[names, "strength"].to_numpy())
    truth = np.array([TRUE[n] for n in names])
    assert np.abs(np.mean(styled, axis=0) - truth).max() < 0.1
    assert np.abs(np.mean(plain, axis=0) - truth).max() > 0.3


def test_style_features_count_markdown():
    f = style_features("# Title\n\n- one\n- two\n1. three\n\n**bold** and __also__")
    assert list(f[1:]) == [1, 3, 2] and f[0] > 20
