"""How fragile a ranking is: for each pair of neighbours on the board, the fewest votes whose removal
would put the lower one ahead.

Method (said on the board): the votes are ordered once by how much removing each would narrow the
pair's gap, by the first-order (influence-function) change of the penalised fit, largest first; then
the smallest k such that removing the first k votes of that order puts the lower arm ahead is found
by refitting (a binary search: about log2(votes) fits per pair). When the pair is linked only by its
own votes this is exact (it removes the upper arm's wins over the lower one, then its ties); with
evidence through other arms it is an upper bound on the fewest, since another set might do it with
fewer. Huang et al. (arXiv 2508.11847) measure Chatbot Arena's fragility the same way.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .fit import PRIOR_SD, fit, prior_precision

MAX_REMOVED = 500  # past this many votes a pair is reported as "more than MAX_REMOVED"
SWAP_MARGIN = 1e-9  # a level pair (equal evidence) is not swapped: the fit is exact only to rounding


@dataclass(frozen=True)
class Fragility:
    """Two neighbours (upper first) and the fewest votes found whose removal puts the lower one ahead."""

    upper: int
    lower: int
    votes: int | None  # None: not within MAX_REMOVED votes (or no removal moves the gap toward zero)


def removal_order(
    theta: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, votes: np.ndarray, upper: int, lower: int
) -> np.ndarray:
    """Vote ids whose removal narrows theta_upper - theta_lower, the largest first-order change first."""
    n = len(theta)
    p = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))
    h = np.diag(prior_precision(n))
    v = p * (1 - p)
    np.add.at(h, (a, a), v)
    np.add.at(h, (b, b), v)
    np.add.at(h, (a, b), -v)
    np.add.at(h, (b, a), -v)
    hinv = np.linalg.inv(h)
    c = hinv[upper] - hinv[lower]
    # Removing a row shifts the optimum by +H^-1 g_row, g_row = (p - y)(e_a - e_b).
    change = np.bincount(votes, (p - y) * (c[a] - c[b]), minlength=int(votes.max()) + 1)
    ids = np.unique(votes)
    narrowing = ids[change[ids] < 0]
    return narrowing[np.argsort(change[narrowing], kind="stable")]


def fewest_removals(
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    votes: np.ndarray,
    n: int,
    upper: int,
    lower: int,
    prior_sd: float = PRIOR_SD,
    limit: int = MAX_REMOVED,
) -> int | None:
    """The fewest votes (along the influence order) whose removal puts `lower` ahead of `upper`."""

    def swapped(k: int) -> bool:
        keep = ~np.isin(votes, order[:k])
        theta = fit(a[keep], b[keep], y[keep], n, prior_sd=prior_sd, with_cov=False).theta
        return bool(theta[lower] - theta[upper] > SWAP_MARGIN)

    theta = fit(a, b, y, n, prior_sd=prior_sd, with_cov=False).theta
    order = removal_order(theta, a, b, y, votes, upper, lower)
    high = min(len(order), limit)
    if high == 0 or not swapped(high):
        return None
    low = 0  # not swapped with `low` removed; swapped with `high`
    while high - low > 1:
        mid = (low + high) // 2
        if swapped(mid):
            high = mid
        else:
            low = mid
    return high


def neighbour_fragility(
    theta: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    votes: np.ndarray,
    prior_sd: float = PRIOR_SD,
) -> list[Fragility]:
    """Fragility of every pair of neighbours in the order of theta (best first)."""
    order = np.argsort(-theta)
    return [
        Fragility(int(u), int(lo), fewest_removals(a, b, y, votes, len(theta), int(u), int(lo), prior_sd))
        for u, lo in itertools.pairwise(order)
    ]
