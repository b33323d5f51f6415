"""What each arm costs beside its score: the median strong-model tokens, guide tokens and seconds of
its stored answers, and a compute-matched pairing of every search arm with the best-of-N arm of the
nearest strong-token cost (so "better method" is not read into "more compute")."""

from __future__ import annotations

import math

import pandas as pd

from .fit import ELO, Z95, Fit

COST_COLUMNS = ["entity", "answers", "strong_tokens", "guide_tokens", "seconds"]
MATCH_COLUMNS = [
    "search",
    "bon",
    "search_tokens",
    "bon_tokens",
    "difference",
    "difference_lo",
    "difference_hi",
]


def arm_costs(gens: pd.DataFrame, entities: list[str]) -> pd.DataFrame:
    """Median cost per arm over its finished answers (every stored answer, voted on or not)."""
    needed = {"label", "status", "strong_tokens", "guide_tokens", "seconds"}
    if not len(gens) or not needed <= set(gens.columns):
        return pd.DataFrame(columns=COST_COLUMNS)
    done = gens[(gens["status"] == "done") & gens["label"].isin(entities)]
    grouped = done.groupby("label")
    out = pd.DataFrame(
        {
            "answers": grouped.size(),
            "strong_tokens": grouped["strong_tokens"].median(),
            "guide_tokens": grouped["guide_tokens"].median(),
            "seconds": grouped["seconds"].median().round(2),
        }
    )
    return out.rename_axis("entity").reset_index()[COST_COLUMNS]


def compute_matched(costs: pd.DataFrame, entities: list[str], result: Fit) -> pd.DataFrame:
    """Each search arm (w2s) beside the best-of-N arm nearest to its median strong tokens (log scale)."""
    tokens = dict(zip(costs["entity"], costs["strong_tokens"], strict=True))
    index = {e: i for i, e in enumerate(entities)}
    bons = [e for e in entities if e.split()[0] == "bon" and tokens.get(e, 0) > 0]
    rows = []
    for search in (e for e in entities if e.split()[0] == "w2s" and tokens.get(e, 0) > 0):
        bon = min(bons, key=lambda b: abs(math.log(tokens[b] / tokens[search])), default=None)
        if bon is None:
            continue
        i, j = index[search], index[bon]
        diff, sd = float(result.theta[i] - result.theta[j]), result.difference_sd(i, j)
        rows.append((search, bon, tokens[search], tokens[bon], round(ELO * diff, 1),
                     round(ELO * (diff - Z95 * sd), 1), round(ELO * (diff + Z95 * sd), 1)))  # fmt: skip
    return pd.DataFrame(rows, columns=MATCH_COLUMNS)


def cost_text(costs: pd.DataFrame, matched: pd.DataFrame) -> str:
    """The cost table and the compute-matched pairs, for a terminal."""
    if costs.empty:
        return ""
    lines = ["cost per answer (medians over each arm's finished answers):", costs.to_string(index=False)]
    if len(matched):
        lines += ["compute-matched (each w2s arm against the best-of-N arm of the nearest strong-token cost; "
                  "difference in Elo, search minus bon, 95% interval):", matched.to_string(index=False)]  # fmt: skip
    return "\n".join(lines)
