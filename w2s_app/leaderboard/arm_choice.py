"""Which arms the next comparison shows: where one more vote is expected to narrow the ranking most.

A comparison shows `columns` arms out of many. Votes on arms already far apart teach little; votes
between neighbours in the ranking decide it. Each set of arms that could be shown gets a score from
the Bradley-Terry information matrix (a vote on S adds about (2 / |S|) p_ij (1 - p_ij) x x^T for each
pair in S, x = e_i - e_j): how much its votes weigh in the variance of the differences between
adjacent arms, in the current estimated order (`set_scores`). The next set is drawn with probability
proportional to that score, mixed with a uniform floor so every arm keeps being shown.

Because the sets are chosen from the data, each vote carries the probability its set had, and the
fit weights it by uniform / that probability (inverse probability weighting, as Chiang et al. 2024,
arXiv 2403.04132, eq. 7): the scores then estimate what uniform sampling would have estimated even
where the Bradley-Terry model is not exact. Under that weighting the rule is the best one for a
weighted sum of the adjacent variances (see `set_scores`); Chatbot Arena's eq. 9 picks a pair by its
own win-rate interval instead. How much it saves is measured in benchmarks/sim_arms.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations, pairwise

import numpy as np

from .fit import PRIOR_SD

FLOOR = 0.25  # share of the sampling spread uniformly over every set: each arm keeps being shown


@dataclass(frozen=True)
class SetChoice:
    """The next comparison's arms, and the probability that set had (for the fit's weight)."""

    arms: tuple[int, ...]
    probability: float
    weight: float  # uniform probability / probability: the vote's weight in the fit


def arm_sets(n_arms: int, columns: int) -> list[tuple[int, ...]]:
    """Every set of `columns` distinct arms, in a fixed order."""
    return list(combinations(range(n_arms), min(columns, n_arms)))


def set_information(theta: np.ndarray, arms: tuple[int, ...]) -> np.ndarray:
    """Expected Bradley-Terry information of one vote on these arms, at strengths theta."""
    n = len(theta)
    info = np.zeros((n, n))
    share = 2.0 / len(arms)
    for i, j in combinations(arms, 2):
        p = 1.0 / (1.0 + np.exp(theta[j] - theta[i]))
        v = share * p * (1 - p)
        info[i, i] += v
        info[j, j] += v
        info[i, j] -= v
        info[j, i] -= v
    return info


@lru_cache(maxsize=32)
def _incidence(n_arms: int, columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first arm, second arm) of every pair, and each set's share of each pair's information."""
    pairs = list(combinations(range(n_arms), 2))
    share = np.zeros((len(arm_sets(n_arms, columns)), len(pairs)))
    index = {pair: m for m, pair in enumerate(pairs)}
    for k, arms in enumerate(arm_sets(n_arms, columns)):
        for pair in combinations(arms, 2):
            share[k, index[pair]] = 2.0 / len(arms)
    return np.array([i for i, _ in pairs]), np.array([j for _, j in pairs]), share


def all_set_information(theta: np.ndarray, columns: int) -> np.ndarray:
    """`set_information` of every set of `arm_sets(len(theta), columns)` at once, stacked."""
    n = len(theta)
    first, second, share = _incidence(n, columns)
    p = 1.0 / (1.0 + np.exp(theta[second] - theta[first]))
    x = np.zeros((len(first), n))
    x[np.arange(len(first)), first], x[np.arange(len(first)), second] = 1.0, -1.0
    per_pair = (p * (1 - p))[:, None, None] * x[:, :, None] * x[:, None, :]
    return np.einsum("sm,mij->sij", share, per_pair)


def adjacent_contrasts(theta: np.ndarray) -> np.ndarray:
    """One row e_i - e_j per pair of neighbours in the order of theta (best first)."""
    order = np.argsort(-theta)
    rows = np.zeros((len(theta) - 1, len(theta)))
    for k, (i, j) in enumerate(pairwise(order)):
        rows[k, i], rows[k, j] = 1.0, -1.0
    return rows


def set_scores(theta: np.ndarray, info: np.ndarray, sets: list[tuple[int, ...]]) -> np.ndarray:
    """How much each set's votes weigh in the variance of the adjacent differences, widest first.

    For a difference c, the inverse-probability-weighted fit's variance is sum_S (u_S^2 / pi_S) a_S
    with a_S = d^T J_S d, d = I^-1 c (J_S: one vote's information on set S, u_S the uniform
    probability). Over pi, that is smallest for pi_S proportional to u_S sqrt(a_S) (Cauchy-Schwarz).
    For several differences at once the a_S are summed, each weighted by its current variance, so
    the widest differences count most.
    """
    n = len(theta)
    precision = info + np.eye(n) / PRIOR_SD**2
    contrasts = adjacent_contrasts(theta)
    d = np.linalg.solve(precision, contrasts.T).T
    variances = np.einsum("ki,ki->k", contrasts, d)
    per_set = (
        all_set_information(theta, len(sets[0]))
        if sets == arm_sets(n, len(sets[0]))
        else np.stack([set_information(theta, s) for s in sets])
    )
    a = np.einsum("ki,sij,kj->ks", d, per_set, d)
    return np.sqrt(np.clip(variances @ a, 0.0, None))


def set_probabilities(
    theta: np.ndarray, info: np.ndarray, sets: list[tuple[int, ...]], floor: float = FLOOR
) -> np.ndarray:
    """Sampling probability of each set: proportional to its score, mixed with a uniform floor."""
    uniform = np.full(len(sets), 1.0 / len(sets))
    score = set_scores(theta, info, sets)
    if score.sum() <= 0:
        return uniform
    return (1 - floor) * score / score.sum() + floor * uniform


def choose_set(
    theta: np.ndarray,
    info: np.ndarray,
    columns: int,
    rng: np.random.Generator,
    policy: str = "adaptive",
    floor: float = FLOOR,
) -> SetChoice:
    """The next comparison's arms under `policy` ('adaptive' or 'uniform'), with its probability."""
    sets = arm_sets(len(theta), columns)
    if policy == "uniform":
        probs = np.full(len(sets), 1.0 / len(sets))
    elif policy == "adaptive":
        probs = set_probabilities(theta, info, sets, floor)
    else:
        raise ValueError(f"unknown arm policy {policy!r}: use 'adaptive' or 'uniform'")
    k = int(rng.choice(len(sets), p=probs))
    return SetChoice(sets[k], float(probs[k]), float(1.0 / len(sets) / probs[k]))


def information_of(theta: np.ndarray, shown: dict[tuple[int, ...], int]) -> np.ndarray:
    """The information of the votes so far (how many votes each set got), at strengths theta."""
    n = len(theta)
    info = np.zeros((n, n))
    for arms, count in shown.items():
        info += count * set_information(theta, arms)
    return info
