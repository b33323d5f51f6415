"""Leaderboard: Bradley-Terry strengths from blind votes, with intervals, win rates and head-to-heads.

A vote for one answer makes it beat every other answer of the comparison; `tie` and `all_bad` make
every pair tie (all_bad is also counted on its own). A tie counts as half a win for each side.
Twins (answers with the same text, see twins.py) win or lose together and tie each other, so the
fit does not depend on which twin was clicked.
Scores are on the Elo scale: 1000 + 400 * log10(strength), strengths with mean zero. The fit has a
prior that pulls scores toward equal while votes are few, and intervals that follow the sample
size (both in fit.py). Which votes a board is fitted on (people's, a judge's, both; filtered,
capped) is chosen in cache.build_board, the one path to every board.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from ..twins import twin_column
from . import fit as bt
from .cost import arm_costs, compute_matched
from .fit import ELO, PRIOR_ELO, PRIOR_SD
from .neighbours import neighbours
from .pairs import head_to_head, separation

OUTCOME_COLUMNS = ["vote", "a", "b", "ga", "gb", "result"]
TABLE_COLUMNS = ["rank", "entity", "score", "lo", "hi", "votes", "wins", "ties"]

__all__ = ["ELO", "Leaderboard", "board_from_outcomes", "fit_bradley_terry", "outcomes_from_votes"]


@dataclass
class Leaderboard:
    """The fitted table, win rates, head-to-head records, vote counts and the top pair's separation."""

    table: pd.DataFrame
    winrate: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    style: dict[str, float] = field(default_factory=dict)  # style coefficients, when style-controlled
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)  # head-to-head per method pair
    separation: dict[str, Any] = field(default_factory=dict)  # the top pair (pairs.separation)
    neighbours: pd.DataFrame = field(default_factory=pd.DataFrame)  # every adjacent pair (neighbours.py)
    costs: pd.DataFrame = field(default_factory=pd.DataFrame)  # median cost per arm (cost.py)
    matched: pd.DataFrame = field(default_factory=pd.DataFrame)  # w2s arms beside cost-matched bon arms
    gold: list[Any] = field(default_factory=list)  # gold.GoldView per stored reward (never in the fit)
    vote_source: str = "humans"  # whose votes: humans, judge:<model>, humans+judge:<model>
    prior_elo: float = PRIOR_ELO
    judges: list[str] = field(default_factory=list)  # judges that voted here: the source switch's choices
    agreement: Any = None  # agreement.Agreement of the judge with people, on a judge's board


def outcomes_from_votes(votes: pd.DataFrame, generations: pd.DataFrame) -> pd.DataFrame:
    """Pairwise outcomes (vote id, labels a and b, generation ids ga and gb, result for a: 1, 0.5, 0)."""
    done = generations[generations["status"] == "done"]
    by_comp = {cid: g for cid, g in done.groupby("comparison_id")}
    twin = twin_ids(done)
    rows = []
    for v in votes.itertuples():
        gens = by_comp.get(v.comparison_id)
        if gens is None or len(gens) < 2:
            continue
        labels = dict(zip(gens["id"], gens["label"], strict=True))
        if v.choice == "generation":
            if v.generation_id not in labels:
                continue
            won = winning_ids(v.generation_id, labels, twin)
            for w in won:
                for gid, label in labels.items():
                    if gid not in won and label != labels[w]:
                        rows.append((v.id, labels[w], label, w, gid, 1.0))
            rows += _ties(v.id, {gid: labels[gid] for gid in won})
        else:
            rows += _ties(v.id, labels)
    out = pd.DataFrame(rows, columns=OUTCOME_COLUMNS)
    return out.astype({"ga": "int64", "gb": "int64"}) if len(out) else out


def _ties(vote: Any, labels: dict[int, str]) -> list[tuple]:
    """Every pair of distinct labels ties (one row per pair, the first answer of each label)."""
    first: dict[str, int] = {}
    for gid, label in sorted(labels.items()):
        first.setdefault(label, gid)
    return [(vote, a, b, first[a], first[b], 0.5) for a, b in combinations(sorted(first), 2)]


def twin_ids(generations: pd.DataFrame) -> dict[int, int]:
    """Generation id -> first id of its twin group: from a `twin_of` column, else from `text`, else none."""
    if "twin_of" in generations:
        known = generations[generations["twin_of"].notna()]
        return dict(zip(known["id"].astype(int), known["twin_of"].astype(int), strict=True))
    if "text" in generations:
        return {
            i: int(t)
            for i, t in zip(generations["id"], twin_column(generations), strict=True)
            if t is not None
        }
    return {}


def winning_ids(chosen: int, labels: dict[int, str], twin: dict[int, int]) -> list[int]:
    """The clicked answer and its twins among this comparison's answers (ids in `labels`)."""
    first = twin.get(chosen)
    return [gid for gid in labels if gid == chosen or (first is not None and twin.get(gid) == first)]


def fit_bradley_terry(
    outcomes: pd.DataFrame,
    entities: list[str],
    weights: np.ndarray | None = None,
    prior_sd: float | None = None,
) -> np.ndarray:
    """Log-strengths (mean zero): maximum likelihood, or the posterior mode with a N(0, prior_sd^2) prior."""
    a, b, y = _encode(outcomes, entities)
    return bt.fit(a, b, y, len(entities), weights=weights, prior_sd=prior_sd, with_cov=False).theta


def _encode(outcomes: pd.DataFrame, entities: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entity indices of each outcome's two sides, and the result for side a."""
    index = {e: i for i, e in enumerate(entities)}
    a = outcomes["a"].map(index).to_numpy(dtype=int)
    b = outcomes["b"].map(index).to_numpy(dtype=int)
    return a, b, outcomes["result"].to_numpy(dtype=float)


def in_preset(
    votes: pd.DataFrame, gens: pd.DataFrame, comps: pd.DataFrame, preset: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blind votes and the generations of one preset's comparisons (all presets when None)."""
    votes = votes[votes["blind"].astype(bool)] if len(votes) else votes
    if preset:
        keep = set(comps.loc[comps["preset"] == preset, "id"])
        votes = votes[votes["comparison_id"].isin(keep)]
        gens = gens[gens["comparison_id"].isin(keep)]
    return votes, gens


def vote_counts(votes: pd.DataFrame) -> dict[str, int]:
    """Votes, comparisons voted on, ties and all-bad votes."""
    if not len(votes):
        return {"votes": 0, "comparisons": 0, "ties": 0, "all_bad": 0}
    return {
        "votes": len(votes),
        "comparisons": int(votes["comparison_id"].nunique()),
        "ties": int((votes["choice"] == "tie").sum()),
        "all_bad": int((votes["choice"] == "all_bad").sum()),
    }


def board_from_outcomes(
    outcomes: pd.DataFrame,
    votes: pd.DataFrame,
    gens: pd.DataFrame,
    z: np.ndarray | None = None,
    prior_sd: float = PRIOR_SD,
    vote_source: str = "humans",
    z_names: tuple[str, ...] = (),
) -> Leaderboard:
    """The board of some pairwise outcomes (`vote` groups the outcomes of one vote) and their votes.

    `votes` give the counts and each entity's wins (the votes that picked it); `z`, when given, are
    per-outcome covariates (style control) named by `z_names`, fitted with the strengths and
    reported in `style`.
    """
    counts = vote_counts(votes)
    if outcomes.empty:
        return Leaderboard(
            pd.DataFrame(columns=TABLE_COLUMNS), pd.DataFrame(), counts, vote_source=vote_source
        )
    entities = sorted(set(outcomes["a"]) | set(outcomes["b"]))
    a, b, y = _encode(outcomes, entities)
    result = bt.fit(a, b, y, len(entities), z=z, clusters=outcomes["vote"].to_numpy(), prior_sd=prior_sd)
    lo, hi = result.interval()
    table = pd.DataFrame(
        {
            "entity": entities,
            "strength": result.theta,
            "strength_lo": lo,
            "strength_hi": hi,
            "score": 1000 + ELO * result.theta,
            "lo": 1000 + ELO * lo,
            "hi": 1000 + ELO * hi,
        }
    )
    # Rank: 1 + how many entities are better beyond doubt (their interval lies above ours).
    table["rank"] = [1 + int((table["lo"] > h).sum()) for h in table["hi"]]
    involved = pd.concat(
        [
            outcomes[["vote", "a"]].rename(columns={"a": "e"}),
            outcomes[["vote", "b"]].rename(columns={"b": "e"}),
        ]
    )
    table["votes"] = [involved.loc[involved["e"] == e, "vote"].nunique() for e in entities]
    chosen = gens.set_index("id")["label"].to_dict() if len(gens) else {}
    picked = pd.Series([chosen.get(g) for g in _won(votes, gens)], dtype=object)
    table["wins"] = [int((picked == e).sum()) for e in entities]
    tied = outcomes[outcomes["result"] == 0.5]
    table["ties"] = [int(tied.loc[(tied["a"] == e) | (tied["b"] == e), "vote"].nunique()) for e in entities]
    table = table.sort_values(["rank", "score"], ascending=[True, False]).reset_index(drop=True)
    table[["score", "lo", "hi"]] = table[["score", "lo", "hi"]].round(1)
    costs = arm_costs(gens, entities)
    style = {}
    if z is not None:
        style = {f: float(c) for f, c in zip(z_names, result.beta, strict=True)}
    return Leaderboard(
        table[[*TABLE_COLUMNS, "strength", "strength_lo", "strength_hi"]],
        win_rates(outcomes, entities),
        counts,
        style=style,
        pairs=head_to_head(outcomes),
        separation=separation(table, entities, result, int(outcomes["vote"].nunique())),
        # Fragility refits the plain model; a style-controlled board reports its gaps without it.
        neighbours=neighbours(entities, result, a, b, y, outcomes["vote"].to_numpy(), prior_sd, z is None),
        costs=costs,
        matched=compute_matched(costs, entities, result),
        vote_source=vote_source,
        prior_elo=float(prior_sd * ELO),
    )


def _won(votes: pd.DataFrame, gens: pd.DataFrame) -> list[int]:
    """The answers each vote chose: the clicked one and its twins (one entry per vote and answer)."""
    if not len(votes) or not len(gens):
        return []
    groups: dict[int, list[int]] = {}  # generation ids are unique across comparisons
    for gid, first in twin_ids(gens[gens["status"] == "done"]).items():
        groups.setdefault(first, []).append(gid)
    twin = {gid: group for group in groups.values() for gid in group}
    out = []
    for gid in votes.loc[votes["choice"] == "generation", "generation_id"]:
        out += twin.get(gid, [gid])
    return out


def win_rates(outcomes: pd.DataFrame, entities: list[str]) -> pd.DataFrame:
    """Row entity's share of points against column entity in direct matches (ties count half)."""
    mat = pd.DataFrame(np.nan, index=entities, columns=entities)
    both = pd.concat(
        [
            outcomes[["a", "b", "result"]],
            outcomes.rename(columns={"a": "b", "b": "a"}).assign(result=lambda d: 1 - d["result"])[
                ["a", "b", "result"]
            ],
        ]
    )
    for (a, b), g in both.groupby(["a", "b"]):
        mat.loc[a, b] = g["result"].mean()
    return mat
