"""The agreement view on simulated people and judges with known answers: a copy agrees fully (kappa 1),
a coin agrees only by chance (kappa about 0, and its interval covers 0 at about the nominal rate).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from w2s_app.leaderboard.agreement import agreement, cohen_kappa, kappa_interval

LABELS = ["baseline", "bon N4", "w2s W2 K2 L30"]
JUDGE = "judge:sim"


def people_and_judge(n: int, judge_rule, seed: int = 0):
    """n comparisons of three answers; one person's vote each (Luce pick or a tie) and the judge's.

    `judge_rule(rng, human_choice)` returns the judge's choice: an answer index 0-2 or 'tie'. The
    judge's pair verdicts follow its choice: the pick beats the others, the rest tie.
    """
    rng = np.random.default_rng(seed)
    strength = np.array([0.0, 0.3, 0.8])
    gens, votes, judgements = [], [], []
    for c in range(n):
        ids = [c * 10 + j for j in range(3)]
        gens += [
            {"id": g, "comparison_id": c, "label": LABELS[j], "status": "done"} for j, g in enumerate(ids)
        ]
        human = (
            "tie" if rng.random() < 0.15 else int(rng.choice(3, p=np.exp(strength) / np.exp(strength).sum()))
        )
        judge = judge_rule(rng, human)
        for vid, voter, choice in ((c, "person", human), (n + c, JUDGE, judge)):
            votes.append({"id": vid, "comparison_id": c, "voter_id": voter, "blind": True, "seconds_shown": 9.0,
                          "choice": "tie" if choice == "tie" else "generation",
                          "generation_id": None if choice == "tie" else ids[choice]})  # fmt: skip
        for x, y in combinations(range(3), 2):
            verdict = "first" if judge == x else "second" if judge == y else "tie"
            judgements.append({"comparison_id": c, "vote_id": n + c, "first_id": ids[x], "second_id": ids[y],
                               "verdict": verdict})  # fmt: skip
    v = pd.DataFrame(votes)
    return (
        v[v["voter_id"] == "person"],
        v[v["voter_id"] == JUDGE],
        pd.DataFrame(gens),
        pd.DataFrame(judgements),
    )


def copy(rng, human):
    return human


def coin(rng, human):
    return "tie" if rng.random() < 0.25 else int(rng.integers(3))


def test_a_judge_that_copies_people_has_kappa_one():
    view = agreement(*people_and_judge(200, copy), JUDGE)
    assert view.items == view.comparisons == view.agree == 200
    assert view.share == 1.0 and view.kappa == pytest.approx(1.0)
    assert 0.95 < view.share_lo < 1.0 and view.share_hi == 1.0
    assert 0.9 < view.kappa_lo < 1.0 and view.kappa_hi == pytest.approx(1.0)
    assert (np.diag(view.confusion.to_numpy()) == view.confusion.to_numpy().sum(axis=1)).all()
    pairs = view.pairs.set_index(["a", "b"])
    assert (pairs["agree"] == 1.0).all()
    assert (pairs["humans_favour"] == pairs["judge_favours"]).all()
    assert pairs.loc[("bon N4", "w2s W2 K2 L30"), "humans_favour"] == "w2s W2 K2 L30"


def test_a_coin_judge_has_kappa_about_zero_and_its_interval_covers_zero_at_the_nominal_rate():
    big = agreement(*people_and_judge(2000, coin, seed=1), JUDGE)
    assert abs(big.kappa) < 0.05 and big.kappa_lo < 0 < big.kappa_hi
    covered = sum(
        (lambda v: v.kappa_lo <= 0 <= v.kappa_hi)(agreement(*people_and_judge(80, coin, seed=s), JUDGE))
        for s in range(200)
    )
    assert 0.90 <= covered / 200 <= 0.99, covered


def test_agreement_share_recovers_a_known_rate():
    def seventy(rng, human):
        if rng.random() < 0.7:
            return human
        others = [c for c in ("tie", 0, 1, 2) if c != human]
        return others[int(rng.integers(len(others)))]

    view = agreement(*people_and_judge(1500, seventy, seed=2), JUDGE)
    assert view.share_lo < 0.7 < view.share_hi and abs(view.share - 0.7) < 0.04
    kappa, observed, chance = cohen_kappa(["a"] * 10, ["a"] * 10)
    assert np.isnan(kappa) and observed == chance == 1.0  # no variety: kappa is undefined, not 1


def test_kappa_matches_its_formula_on_a_small_table():
    # 10 items: people a,a,a,a,a,b,b,b,tie,tie; judge a,a,a,b,tie,b,b,a,tie,a.
    people = list("aaaaabbb") + ["tie", "tie"]
    judge = list("aaabtbba") + ["tie", "a"]
    judge = [("tie" if j == "t" else j) for j in judge]
    kappa, observed, chance = cohen_kappa(people, judge)
    assert observed == 0.6
    assert chance == pytest.approx(0.5 * 0.5 + 0.3 * 0.3 + 0.2 * 0.2)
    assert kappa == pytest.approx((0.6 - 0.38) / 0.62)
    lo, hi = kappa_interval(6, 10, chance)
    assert lo < kappa < hi and -1 <= lo and hi <= 1


def test_who_wins_by_whom_per_method_pair():
    # Comparison 0: person picks w2s, judge picks w2s. Comparison 1: person picks bon, judge picks w2s.
    def rule(rng, human):
        return 2

    people, judge, gens, judgements = people_and_judge(2, rule)
    people = people.assign(choice="generation", generation_id=[2, 11])
    view = agreement(people, judge, gens, judgements, JUDGE)
    assert view.items == 2 and view.agree == 1 and view.share == 0.5
    pairs = view.pairs.set_index(["a", "b"])
    bw = pairs.loc[("bon N4", "w2s W2 K2 L30")]
    assert (bw["humans_a"], bw["humans_b"], bw["judge_a"], bw["judge_b"]) == (1, 1, 0, 2)
    assert bw["humans_favour"] == "even" and bw["judge_favours"] == "w2s W2 K2 L30" and bw["agree"] == 0.5
    # baseline-bon: only comparison 1 has a person's outcome (bon over baseline); the judge tied them.
    bb = pairs.loc[("baseline", "bon N4")]
    assert (bb["comparisons"], bb["humans_b"], bb["judge_tie"], bb["agree"]) == (1, 1, 1, 0.0)
    assert "agreed with people 1 times" in view.summary()


def test_no_shared_comparisons_says_so():
    people, judge, gens, judgements = people_and_judge(5, copy)
    view = agreement(
        people[people["comparison_id"] < 2], judge[judge["comparison_id"] >= 2], gens, judgements, JUDGE
    )
    assert view.items == 0 and "No comparison has votes from both" in view.summary()
