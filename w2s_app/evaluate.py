"""The `evaluate` command: run methods over prompts and seeds, score answers with a gold reward."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pandas as pd
from scipy import stats


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and a 95% t-interval."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def evaluate(
    compare: Callable[[str, int], Any],
    prompts: list[str],
    seeds: int,
    reward: Callable[[str, str], float],
    progress: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """One row per method: mean gold reward with its 95% interval, length, strong tokens, seconds."""
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for prompt in prompts:
        for seed in range(seeds):
            comp = compare(prompt, seed)
            for r in comp.results:
                acc = rows[r.label]
                if not r.ok:
                    acc["failed"].append(1.0)
                    continue
                acc["reward"].append(float(reward(prompt, r.text)))
                acc["words"].append(float(len(r.text.split())))
                acc["strong_tokens"].append(float(r.counts.strong_tokens))
                acc["seconds"].append(float(r.seconds))
            if progress:
                progress()
    table = []
    for label, acc in rows.items():
        if not acc["reward"]:
            table.append({"method": label, "answers": 0, "failed": len(acc["failed"])})
            continue
        mean, lo, hi = interval(acc["reward"])
        table.append(
            {
                "method": label,
                "answers": len(acc["reward"]),
                "failed": len(acc["failed"]),
                "reward": round(mean, 4),
                "lo": round(lo, 4),
                "hi": round(hi, 4),
                "words": round(sum(acc["words"]) / len(acc["words"]), 1),
                "strong_tokens": round(sum(acc["strong_tokens"]) / len(acc["strong_tokens"]), 1),
                "seconds": round(sum(acc["seconds"]) / len(acc["seconds"]), 2),
            }
        )
    return pd.DataFrame(table)
