"""Leaderboard: Bradley-Terry strengths from blind votes, with bootstrap intervals and win rates.

A vote for one answer makes it beat every other answer of the comparison; `tie` and `all_bad` make
every pair tie (all_bad is also counted on its own). A tie counts as half a win for each side.
Twins (answers with the same text, see twins.py) win or lose together and tie each other, so the
fit does not depend on which twin was clicked.
Scores are on the Elo scale: 1000 + 400 * log10(strength), strengths normalised to mean zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from ..twins import twin_column

ELO = 400 / math.log(10)


@dataclass
class Leaderboard:
    """The fitted table, the pairwise win-rate matrix, and vote counts."""

    table: pd.DataFrame
    winrate: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    style: dict[str, float] = field(default_factory=dict)  # style coefficients, when style-controlled


def outcomes_from_votes(votes: pd.DataFrame, generations: pd.DataFrame) -> pd.DataFrame:
    """Pairwise outcomes (vote id, a, b, result for a: 1 win, 0.5 tie, 0 loss) from votes."""
    done = generations[generations["status"] == "done"]
    by_comp = {cid: g for cid, g in done.groupby("comparison_id")}
    twin = _twin_ids(done)
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
                        rows.append((v.id, labels[w], label, 1.0))
            for a, b in combinations(sorted({labels[w] for w in won}), 2):
                rows.append((v.id, a, b, 0.5))
        else:
            for a, b in combinations(sorted(set(labels.values())), 2):
                rows.append((v.id, a, b, 0.5))
    return pd.DataFrame(rows, columns=["vote", "a", "b", "result"])


def _twin_ids(generations: pd.DataFrame) -> dict[int, int]:
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
    outcomes: pd.DataFrame, entities: list[str], weights: np.ndarray | None = None
) -> np.ndarray:
    """Maximum-likelihood log-strengths (mean zero) for the entities from (weighted) pairwise outcomes."""
    return _fit(*_encode(outcomes, entities), weights, len(entities))


def _encode(outcomes: pd.DataFrame, entities: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entity indices of each outcome's two sides, and the result for side a."""
    index = {e: i for i, e in enumerate(entities)}
    a = outcomes["a"].map(index).to_numpy(dtype=int)
    b = outcomes["b"].map(index).to_numpy(dtype=int)
    return a, b, outcomes["result"].to_numpy(dtype=float)


def _fit(a: np.ndarray, b: np.ndarray, y: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
    """Newton-type BT fit on per-pair totals: the likelihood only needs points won and games per pair."""
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    pair = a * n + b
    games = np.bincount(pair, w, minlength=n * n)
    points = np.bincount(pair, w * y, minlength=n * n)
    keep = games > 0
    pa, pb = np.divmod(np.flatnonzero(keep), n)
    games, points = games[keep], points[keep]
    ridge = 1e-4  # keeps the optimum finite when an entity never loses (or never wins)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[pa] - theta[pb]
        # log p = -log(1 + e^-d), log(1 - p) = -log(1 + e^d), computed without overflow.
        nll = np.sum(points * np.logaddexp(0, -d) + (games - points) * np.logaddexp(0, d))
        r = games * _sigmoid(d) - points
        g = np.bincount(pa, r, minlength=n) - np.bincount(pb, r, minlength=n)
        return float(nll + ridge * theta @ theta), g + 2 * ridge * theta

    def hess(theta: np.ndarray) -> np.ndarray:
        p = _sigmoid(theta[pa] - theta[pb])
        v = games * p * (1 - p)
        h = np.zeros((n, n))
        np.add.at(h, (pa, pa), v)
        np.add.at(h, (pb, pb), v)
        np.add.at(h, (pa, pb), -v)
        np.add.at(h, (pb, pa), -v)
        return h + 2 * ridge * np.eye(n)

    theta = minimize(loss, np.zeros(n), jac=True, hess=hess, method="trust-exact").x
    return theta - theta.mean()


def _sigmoid(d: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 0.5 * (1 + np.tanh(0.5 * d))


def _votes_frames(source: Any, preset: str | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(votes, generations, comparisons) from a Store or a tuple of frames."""
    if isinstance(source, tuple):
        return source
    return source.leaderboard_frames(preset)


def compute_leaderboard(
    source: Any, preset: str | None = None, n_boot: int = 200, seed: int = 0
) -> Leaderboard:
    """Bradley-Terry table with 95% bootstrap intervals, ranks, win-rate matrix and counts.

    `source` is a Store, or a tuple of (votes, generations, comparisons) frames shaped like its tables.
    """
    votes, gens, comps = _votes_frames(source, preset)
    votes = votes[votes["blind"].astype(bool)] if len(votes) else votes
    if preset:
        keep = set(comps.loc[comps["preset"] == preset, "id"])
        votes = votes[votes["comparison_id"].isin(keep)]
        gens = gens[gens["comparison_id"].isin(keep)]
    counts = {
        "votes": len(votes),
        "comparisons": int(votes["comparison_id"].nunique()) if len(votes) else 0,
        "ties": int((votes["choice"] == "tie").sum()) if len(votes) else 0,
        "all_bad": int((votes["choice"] == "all_bad").sum()) if len(votes) else 0,
    }
    cols = ["rank", "entity", "score", "lo", "hi", "votes", "wins", "ties"]
    outcomes = (
        outcomes_from_votes(votes, gens) if len(votes) else pd.DataFrame(columns=["vote", "a", "b", "result"])
    )
    if outcomes.empty:
        return Leaderboard(pd.DataFrame(columns=cols), pd.DataFrame(), counts)
    entities = sorted(set(outcomes["a"]) | set(outcomes["b"]))
    theta = fit_bradley_terry(outcomes, entities)
    # Bootstrap over votes (not pairs): the pairs of one vote are not independent. Drawing votes
    # with replacement is the same as weighting each vote's pairs by how often it was drawn.
    rng = np.random.default_rng(seed)
    vote_codes, vote_ids = pd.factorize(outcomes["vote"])
    encoded = _encode(outcomes, entities)
    boots = []
    for _ in range(n_boot):
        drawn = np.bincount(rng.integers(0, len(vote_ids), len(vote_ids)), minlength=len(vote_ids))
        boots.append(_fit(*encoded, drawn[vote_codes], len(entities)))
    boot = np.array(boots) if boots else theta[None, :]
    lo, hi = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
    table = pd.DataFrame(
        {
            "entity": entities,
            "strength": theta,
            "strength_lo": lo,
            "strength_hi": hi,
            "score": 1000 + ELO * theta,
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
    table["ties"] = [
        int(
            outcomes.loc[
                (outcomes["result"] == 0.5) & ((outcomes["a"] == e) | (outcomes["b"] == e)), "vote"
            ].nunique()
        )
        for e in entities
    ]
    table = table.sort_values(["rank", "score"], ascending=[True, False]).reset_index(drop=True)
    table[["score", "lo", "hi"]] = table[["score", "lo", "hi"]].round(1)
    return Leaderboard(
        table[[*cols, "strength", "strength_lo", "strength_hi"]], win_rates(outcomes, entities), counts
    )


def _won(votes: pd.DataFrame, gens: pd.DataFrame) -> list[int]:
    """The answers each vote chose: the clicked one and its twins (one entry per vote and answer)."""
    groups: dict[int, list[int]] = {}  # generation ids are unique across comparisons
    for gid, first in _twin_ids(gens[gens["status"] == "done"]).items():
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
