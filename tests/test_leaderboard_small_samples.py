"""Honest at small samples: the prior, intervals that follow the sample, head-to-heads, separation,
and style control's twin rule. Simulated votes with known strengths throughout.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.boards import fit_board
from tests.test_twins import frames as twin_frames
from w2s_app.leaderboard.board import board_from_outcomes
from w2s_app.leaderboard.fit import ELO, PRIOR_SD, fit
from w2s_app.leaderboard.pairs import head_to_head, separation_text, wilson
from w2s_app.leaderboard.style import style_outcomes

NO_VOTES = pd.DataFrame(columns=["id", "comparison_id", "choice", "generation_id", "blind"])
NO_GENS = pd.DataFrame(columns=["id", "comparison_id", "label", "status"])


def one_vote(n_answers: int, choice: str = "generation"):
    """One comparison with n answers of different lengths and one vote for the first (or a tie)."""
    labels = [f"m{j}" for j in range(n_answers)]
    gens = pd.DataFrame(
        {
            "id": range(n_answers),
            "comparison_id": 0,
            "label": labels,
            "status": "done",
            "position": range(n_answers),
        }
    )
    votes = pd.DataFrame(
        [{"id": 0, "comparison_id": 0, "choice": choice, "generation_id": 0 if choice == "generation" else None,
          "blind": True, "voter_id": "v", "seconds_shown": 9.0}]
    )  # fmt: skip
    texts = {j: "word " * (5 + 40 * j) + "\n- item" * j for j in range(n_answers)}
    return votes, gens, pd.DataFrame([{"id": 0, "preset": "p"}]), texts


@pytest.mark.parametrize("n_answers", [2, 3, 4])
def test_one_vote_moves_no_score_more_than_100_elo_and_no_interval_is_a_point(n_answers):
    votes, gens, comps, texts = one_vote(n_answers)
    plain = fit_board(votes, gens, comps)
    styled = fit_board(votes, gens, comps, texts=texts, style_control=True)
    for board in (plain, styled):
        t = board.table
        assert (abs(t["score"] - t["score"].mean()) <= 100).all(), t
        assert (t["hi"] - t["lo"] > 50).all(), t  # wide: one vote says little
        assert (t["lo"] < t["score"]).all() and (t["score"] < t["hi"]).all()
        assert set(t["rank"]) == {1}  # nobody is better beyond doubt after one vote
    winner = plain.table.set_index("entity").loc["m0", "score"]
    assert winner > 1000  # it moved, a little, the right way


def test_the_prior_fades_as_votes_come_in():
    # 600 of 1000 decided games: the maximum-likelihood difference is log(1.5); the prior's pull is small.
    outcomes = pd.DataFrame(
        [(i, "a", "b", 1.0 if i < 600 else 0.0) for i in range(1000)], columns=["vote", "a", "b", "result"]
    )
    board = board_from_outcomes(outcomes, NO_VOTES, NO_GENS).table.set_index("entity")
    diff = board.loc["a", "strength"] - board.loc["b", "strength"]
    assert np.log(1.5) * 0.98 < diff < np.log(1.5)
    few = board_from_outcomes(outcomes.iloc[[0, 1, 2, 700]], NO_VOTES, NO_GENS).table.set_index("entity")
    assert (
        0 < few.loc["a", "score"] - few.loc["b", "score"] < 0.6 * ELO * np.log(3)
    )  # 3-1, well short of the MLE


def simulate_outcomes(
    theta: np.ndarray, n_votes: int, rng: np.random.Generator, shown: int = 3
) -> pd.DataFrame:
    """Votes on `shown` random entities, the best drawn by Plackett-Luce; the pick beats each other one."""
    rows = []
    names = [f"e{i}" for i in range(len(theta))]
    for v in range(n_votes):
        ents = rng.choice(len(theta), shown, replace=False)
        p = np.exp(theta[ents]) / np.exp(theta[ents]).sum()
        w = ents[rng.choice(shown, p=p)]
        rows += [(v, names[w], names[e], 1.0) for e in ents if e != w]
    return pd.DataFrame(rows, columns=["vote", "a", "b", "result"])


def test_500_votes_recover_a_known_order_and_intervals_cover_at_the_nominal_rate():
    truth = np.array([0.6, 0.0, -0.6])  # e0 > e1 > e2, about 100 Elo apart
    rng = np.random.default_rng(24)
    covered = total = right_order = 0
    boards = 200
    for _ in range(boards):
        table = board_from_outcomes(simulate_outcomes(truth, 500, rng), NO_VOTES, NO_GENS).table
        right_order += list(table.sort_values("score", ascending=False)["entity"]) == ["e0", "e1", "e2"]
        t = table.set_index("entity")
        for i, value in enumerate(truth - truth.mean()):
            total += 1
            covered += t.loc[f"e{i}", "strength_lo"] <= value <= t.loc[f"e{i}", "strength_hi"]
    assert right_order == boards
    assert 0.92 <= covered / total <= 0.98, covered / total


def test_clustering_by_vote_is_what_keeps_coverage_nominal():
    # A vote's pairwise outcomes share one decision; treating them as independent gives narrower,
    # overconfident intervals. Same simulated data, fitted both ways.
    truth = np.array([0.5, 0.1, -0.2, -0.4])
    index = {f"e{i}": i for i in range(4)}
    rng = np.random.default_rng(7)
    hits = {"votes": 0, "rows": 0}
    total = 0
    for _ in range(300):
        o = simulate_outcomes(truth, 300, rng)
        a, b = o["a"].map(index).to_numpy(), o["b"].map(index).to_numpy()
        y, votes = o["result"].to_numpy(), o["vote"].to_numpy()
        for key, clusters in (("votes", votes), ("rows", None)):
            lo, hi = fit(a, b, y, 4, clusters=clusters).interval()
            hits[key] += int(((lo <= truth - truth.mean()) & (truth - truth.mean() <= hi)).sum())
        total += 4
    assert 0.93 <= hits["votes"] / total <= 0.98, hits
    assert hits["rows"] / total < 0.92, hits


def test_intervals_shrink_like_one_over_root_votes():
    truth = np.array([0.3, 0.0, -0.3])
    rng = np.random.default_rng(3)
    width = {
        n: (lambda t: float((t["hi"] - t["lo"]).mean()))(
            board_from_outcomes(simulate_outcomes(truth, n, rng), NO_VOTES, NO_GENS).table
        )
        for n in (400, 1600)
    }
    assert 1.7 < width[400] / width[1600] < 2.3, width


def test_head_to_head_counts_decided_votes_with_a_wilson_interval():
    rows = [(i, "w2s", "bon", 1.0) for i in range(7)] + [(10 + i, "bon", "w2s", 1.0) for i in range(3)]
    rows += [(20 + i, "bon", "w2s", 0.5) for i in range(4)] + [(30, "baseline", "w2s", 0.0)]
    pairs = head_to_head(pd.DataFrame(rows, columns=["vote", "a", "b", "result"])).set_index(["a", "b"])
    bon_w2s = pairs.loc[("bon", "w2s")]  # a is the alphabetically first: bon
    assert (bon_w2s["wins"], bon_w2s["losses"], bon_w2s["ties"], bon_w2s["decided"]) == (3, 7, 4, 10)
    assert bon_w2s["share"] == 0.3
    # Wilson interval of 3/10 (z = 1.96): centre (3 + 1.92) / 13.84, half-width 1.96 sqrt(2.1 + 0.96) / 13.84.
    centre, half = (
        (3 + 1.96**2 / 2) / (10 + 1.96**2),
        1.96 * np.sqrt(10 * 0.3 * 0.7 + 1.96**2 / 4) / (10 + 1.96**2),
    )
    assert bon_w2s["share_lo"] == pytest.approx(centre - half, abs=2e-3)
    assert bon_w2s["share_hi"] == pytest.approx(centre + half, abs=2e-3)
    one = pairs.loc[("baseline", "w2s")]
    assert (one["wins"], one["losses"]) == (0, 1) and one["share_hi"] < 1 and one["share_lo"] == 0
    assert wilson(0, 0) == (0.0, 1.0)


def test_wilson_interval_is_scipys():
    """The closed form against scipy's binomtest(...).proportion_ci(method="wilson"), every k of n <= 40."""
    from scipy.stats import binomtest

    for n in range(1, 41):
        for k in range(n + 1):
            for level in (0.95, 0.8):
                ci = binomtest(k, n).proportion_ci(level, method="wilson")
                assert wilson(k, n, level) == pytest.approx((ci.low, ci.high), abs=1e-12), (k, n, level)


def two_entity_board(wins: int, losses: int):
    rows = [(i, "a", "b", 1.0) for i in range(wins)] + [(wins + i, "a", "b", 0.0) for i in range(losses)]
    return board_from_outcomes(pd.DataFrame(rows, columns=["vote", "a", "b", "result"]), NO_VOTES, NO_GENS)


def test_votes_needed_to_separate_the_top_pair_is_consistent_with_the_fit():
    board = two_entity_board(33, 27)  # 55 % after 60 votes: far from separated
    sep = board.separation
    assert sep["leader"] == "a" and not sep["separated"] and sep["votes"] == 60
    more = sep["more_votes"]
    assert 200 < more < 2000, sep  # about (1.96 / logit(0.55))^2 / (0.55 * 0.45) = 388 in all
    # The same win share with that many more votes: just separated; with far fewer: not yet.
    total = 60 + more
    assert two_entity_board(round(total * 1.2 * 0.55), round(total * 1.2 * 0.45)).separation["separated"]
    assert not two_entity_board(round(total * 0.7 * 0.55), round(total * 0.7 * 0.45)).separation["separated"]
    assert "more votes would separate them" in separation_text(sep)
    clear = two_entity_board(90, 10).separation
    assert clear["separated"] and clear["more_votes"] == 0 and "no longer overlap" in separation_text(clear)
    level = two_entity_board(20, 20).separation
    assert level["more_votes"] is None and "level" in separation_text(level)


def test_style_control_counts_a_twin_vote_for_the_group_and_ties_the_twins():
    votes, gens, comps = twin_frames(clicked_twin=1, votes_for_other=0, twin_votes=1)
    texts = dict(zip(gens["id"], gens["text"], strict=True))
    out = style_outcomes(votes, gens, texts)
    rows = sorted(zip(out["a"], out["b"], out["result"], strict=True))
    assert rows == [
        ("baseline", "bon N4", 0.5),
        ("baseline", "w2s W2 K2 L30", 1.0),
        ("bon N4", "w2s W2 K2 L30", 1.0),
    ]
    boards = []
    for clicked in (0, 1):
        votes, gens, comps = twin_frames(clicked_twin=clicked)
        texts = dict(zip(gens["id"], gens["text"], strict=True))
        boards.append(fit_board(votes, gens, comps, texts=texts, style_control=True))
    pd.testing.assert_frame_equal(boards[0].table, boards[1].table)
    # With byte-identical twins (same style features too) the two methods score exactly alike.
    texts = {gid: ("Same answer." if label != "w2s W2 K2 L30" else text)
             for gid, label, text in zip(gens["id"], gens["label"], gens["text"], strict=True)}  # fmt: skip
    t = fit_board(votes, gens, comps, texts=texts, style_control=True).table.set_index("entity")
    assert t.loc["baseline", "score"] == t.loc["bon N4", "score"] > t.loc["w2s W2 K2 L30", "score"]


def test_judge_votes_in_the_frames_never_reach_peoples_board():
    votes, gens, comps, _ = one_vote(3)
    alone = fit_board(votes, gens, comps)
    judged = pd.concat(
        [votes, votes.assign(id=1, voter_id="judge:some-model", generation_id=2)], ignore_index=True
    )
    mixed = fit_board(judged, gens, comps)
    pd.testing.assert_frame_equal(alone.table, mixed.table)
    assert mixed.counts["votes"] == 1


def test_prior_strength_is_the_documented_one():
    assert PRIOR_SD * ELO == pytest.approx(100.0)
