"""Adaptive arm choice (leaderboard/arm_choice.py), checked by simulation with known strengths: the
inverse-probability-weighted fit covers the values uniform voting would estimate, every set keeps
being shown, and the rule leans toward sets of close neighbours."""

from __future__ import annotations

import numpy as np

from benchmarks.sim_arms import Arena, adjacent_pairs, estimand
from w2s_app.leaderboard.arm_choice import FLOOR, arm_sets, choose_set, set_probabilities
from w2s_app.leaderboard.fit import ELO, Z95

TRUTH = np.array([0.0, 25.0, 50.0, 150.0, 175.0, 300.0]) / ELO


def test_the_weighted_fit_covers_the_uniform_estimand_under_adaptive_choice():
    target = estimand(TRUTH, 3, 0.15)
    covered, errors = [], []
    for seed in range(40):
        arena = Arena(TRUTH, 3, 0.15, "adaptive", 500 + seed)
        for _ in range(12):  # 12 rounds of 25 votes, refitting between them as the app's cache does
            for _ in range(25):
                arena.vote()
            result = arena.refit()
        for i, j in adjacent_pairs(TRUTH):
            error = (result.theta[i] - result.theta[j]) - (target[i] - target[j])
            covered.append(abs(error) <= Z95 * result.difference_sd(i, j))
            errors.append(error / result.difference_sd(i, j))
    assert 0.88 <= np.mean(covered) <= 1.0, np.mean(covered)  # 200 intervals: 95 % +- 3 %
    assert abs(np.mean(errors)) < 0.25  # no bias worth a quarter of a standard error


def test_every_set_keeps_a_floor_and_close_neighbours_are_shown_more():
    sets = arm_sets(6, 3)
    info = 30 * np.eye(6)  # some votes already in
    probs = set_probabilities(TRUTH, info, sets)
    assert abs(probs.sum() - 1) < 1e-12
    assert probs.min() >= FLOOR / len(sets) - 1e-12
    by_set = dict(zip(sets, probs, strict=True))
    assert by_set[(0, 1, 2)] > by_set[(0, 2, 5)]  # three close arms over a spread-out set


def test_uniform_weighs_every_vote_the_same_and_a_bad_policy_is_refused():
    rng = np.random.default_rng(0)
    choice = choose_set(TRUTH, np.eye(6), 3, rng, "uniform")
    assert choice.weight == 1.0 and len(set(choice.arms)) == 3
    adaptive = choose_set(TRUTH, np.eye(6), 3, rng, "adaptive")
    assert abs(adaptive.weight - 1 / len(arm_sets(6, 3)) / adaptive.probability) < 1e-12
    try:
        choose_set(TRUTH, np.eye(6), 3, rng, "greedy")
    except ValueError as exc:
        assert "greedy" in str(exc)
    else:
        raise AssertionError("an unknown policy was accepted")
