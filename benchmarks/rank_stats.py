"""How well one score ranks candidates by a reward: within-group Spearman, its bootstrap interval, the top pick.

The statistics of `pair_reward_rank.py`, kept apart so they are tested without models. A group is one
opening's candidates: the guide pair's score and the gold reward of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

Group = tuple[Sequence[float], Sequence[float]]  # (scores, rewards) of one opening's candidates


def spearman(scores: Sequence[float], rewards: Sequence[float]) -> float | None:
    """Spearman rank correlation (ties get their mean rank); None when either side is constant."""
    x = rankdata(np.asarray(scores, dtype=float))
    y = rankdata(np.asarray(rewards, dtype=float))
    if len(x) != len(y):
        raise ValueError(f"{len(x)} scores but {len(y)} rewards")
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None  # no order to agree with: VADER gives 0.0 to every neutral continuation
    return float(np.corrcoef(x, y)[0, 1])


def bootstrap_mean(
    values: Sequence[float], reps: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean and a percentile bootstrap interval, resampling the values (openings) with replacement."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        raise ValueError("no values to resample")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, mean, mean
    picks = np.random.default_rng(seed).integers(0, len(v), size=(reps, len(v)))
    means = v[picks].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return mean, float(lo), float(hi)


def top_above_median(scores: Sequence[float], rewards: Sequence[float]) -> bool:
    """True when the best-scored candidate (ties to the lower index, as bon picks) beats the median reward."""
    s = np.asarray(scores, dtype=float)
    r = np.asarray(rewards, dtype=float)
    best = int(np.argmax(s))  # argmax takes the first of equal maxima, like bon's tie rule
    return bool(r[best] > np.median(r))


def summarise(groups: Sequence[Group], reps: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The figures over openings: mean within-opening Spearman with its 95% interval, pooled, top pick."""
    if not groups:
        raise ValueError("no openings to summarise")
    within = [c for c in (spearman(s, r) for s, r in groups) if c is not None]
    pooled_s = [x for s, _ in groups for x in s]
    pooled_r = [x for _, r in groups for x in r]
    mean, lo, hi = bootstrap_mean(within, reps, seed) if within else (None, None, None)
    sizes = sorted({len(s) for s, _ in groups})
    return {
        "openings": len(groups),
        "candidates": sizes[0] if len(sizes) == 1 else sizes,
        # Openings whose rewards (or scores) are all equal have no ranking to measure.
        "openings_ranked": len(within),
        "spearman_mean": mean,
        "spearman_lo": lo,
        "spearman_hi": hi,
        "spearman_pooled": spearman(pooled_s, pooled_r),
        "top_above_median": sum(top_above_median(s, r) for s, r in groups) / len(groups),
        "bootstrap": {"reps": reps, "seed": seed, "level": 0.95},
    }
