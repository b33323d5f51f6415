"""Style-controlled Bradley-Terry (Chatbot Arena's style control): strengths net of answer style.

Each pairwise outcome gets, beside the two entities, the normalised difference of each style
feature, (f_a - f_b) / (f_a + f_b): answer length and markdown
(headers, list items, bold spans), scaled to unit root-mean-square. A logistic model P(a beats b) = sigmoid(theta_a - theta_b +
beta . z) then gives strengths theta with the style effect beta taken out. Intervals come from
bootstrap resamples of votes, as in the plain fit.
"""

from __future__ import annotations

import re
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.optimize import minimize

FEATURES = ("length", "headers", "list_items", "bold")
_HEADER = re.compile(r"^\s{0,3}#{1,6}\s", re.M)
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s", re.M)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


def style_features(text: str) -> np.ndarray:
    """Length in characters and counts of markdown headers, list items and bold spans."""
    text = text or ""
    return np.array(
        [len(text), len(_HEADER.findall(text)), len(_LIST.findall(text)), len(_BOLD.findall(text))],
        dtype=float,
    )


def style_outcomes(votes: pd.DataFrame, gens: pd.DataFrame, texts: dict[int, str]) -> pd.DataFrame:
    """Pairwise outcomes with the generation ids of both sides (vote, a, b, ga, gb, result)."""
    by_comp = {cid: g for cid, g in gens[gens["status"] == "done"].groupby("comparison_id")}
    rows = []
    for v in votes.itertuples():
        g = by_comp.get(v.comparison_id)
        if g is None or len(g) < 2:
            continue
        items = list(zip(g["id"], g["label"], strict=True))
        if v.choice == "generation":
            won = [(gid, lab) for gid, lab in items if gid == v.generation_id]
            if not won:
                continue
            wid, wlab = won[0]
            rows += [(v.id, wlab, lab, wid, gid, 1.0) for gid, lab in items if gid != wid and lab != wlab]
        else:
            rows += [(v.id, la, lb, ga, gb, 0.5) for (ga, la), (gb, lb) in combinations(items, 2) if la != lb]
    out = pd.DataFrame(rows, columns=["vote", "a", "b", "ga", "gb", "result"])
    feats = {gid: style_features(texts.get(int(gid), "")) for gid in set(out["ga"]) | set(out["gb"])}
    fa = np.array([feats[g] for g in out["ga"]]).reshape(-1, len(FEATURES))
    fb = np.array([feats[g] for g in out["gb"]]).reshape(-1, len(FEATURES))
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.where(fa + fb > 0, (fa - fb) / (fa + fb), 0.0)
    for i, name in enumerate(FEATURES):
        out[name] = diff[:, i]
    return out


def fit_style(
    a: np.ndarray, b: np.ndarray, z: np.ndarray, y: np.ndarray, n: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Log-strengths (mean zero) and style coefficients maximising the (weighted) likelihood (Newton)."""
    w = np.ones(len(y)) if weights is None else weights.astype(float)
    # Design matrix: +1 for side a, -1 for side b, then the style differences. Strengths and length
    # are often nearly collinear, so a second-order method is used: a first-order one stops early.
    x = np.zeros((len(y), n + z.shape[1]))
    rows = np.arange(len(y))
    x[rows, a] += 1.0
    x[rows, b] -= 1.0
    x[:, n:] = z
    ridge = 1e-4

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        d = x @ params
        nll = np.sum(w * (y * np.logaddexp(0, -d) + (1 - y) * np.logaddexp(0, d)))
        r = w * (0.5 * (1 + np.tanh(0.5 * d)) - y)
        return float(nll + ridge * params @ params), x.T @ r + 2 * ridge * params

    def hess(params: np.ndarray) -> np.ndarray:
        p = 0.5 * (1 + np.tanh(0.5 * (x @ params)))
        return (x * (w * p * (1 - p))[:, None]).T @ x + 2 * ridge * np.eye(x.shape[1])

    fit = minimize(loss, np.zeros(x.shape[1]), jac=True, hess=hess, method="trust-exact").x
    theta = fit[:n] - fit[:n].mean()
    return theta, fit[n:]


def style_strengths(
    outcomes: pd.DataFrame, entities: list[str], n_boot: int = 200, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """(theta, lo, hi, coefficients): the style-controlled fit with 95% bootstrap intervals over votes."""
    index = {e: i for i, e in enumerate(entities)}
    a = outcomes["a"].map(index).to_numpy(dtype=int)
    b = outcomes["b"].map(index).to_numpy(dtype=int)
    y = outcomes["result"].to_numpy(dtype=float)
    raw = outcomes[list(FEATURES)].to_numpy(dtype=float)
    # Scaled, not centred: side a is the winner in every decisive outcome, so centring would add
    # an "a wins" intercept; unscaled-by-mean differences keep the model symmetric in a and b.
    scale = np.sqrt((raw**2).mean(axis=0))
    z = np.where(scale > 0, raw / np.where(scale > 0, scale, 1), 0.0)
    n = len(entities)
    theta, beta = fit_style(a, b, z, y, n)
    rng = np.random.default_rng(seed)
    codes, ids = pd.factorize(outcomes["vote"])
    boots = [
        fit_style(a, b, z, y, n, np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids))[codes])[
            0
        ]
        for _ in range(n_boot)
    ]
    boot = np.array(boots) if boots else theta[None, :]
    lo, hi = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
    return theta, lo, hi, {f: float(c) for f, c in zip(FEATURES, beta, strict=True)}


def apply_style_control(
    board, votes: pd.DataFrame, gens: pd.DataFrame, texts: dict[int, str], n_boot: int = 200
):
    """The board with scores, intervals and ranks from the style-controlled fit (counts, win rates kept)."""
    from .board import ELO

    if board.table.empty:
        return board
    votes = votes[votes["blind"].astype(bool)] if len(votes) else votes
    outcomes = style_outcomes(votes, gens, texts)
    entities = sorted(set(outcomes["a"]) | set(outcomes["b"]))
    theta, lo, hi, coefs = style_strengths(outcomes, entities, n_boot)
    fit = pd.DataFrame({"entity": entities, "strength": theta, "strength_lo": lo, "strength_hi": hi})
    table = board.table.drop(columns=["strength", "strength_lo", "strength_hi", "rank"]).merge(
        fit, on="entity"
    )
    table["score"] = (1000 + ELO * table["strength"]).round(1)
    table["lo"] = (1000 + ELO * table["strength_lo"]).round(1)
    table["hi"] = (1000 + ELO * table["strength_hi"]).round(1)
    table["rank"] = [1 + int((table["lo"] > h).sum()) for h in table["hi"]]
    table = table.sort_values(["rank", "score"], ascending=[True, False]).reset_index(drop=True)
    cols = [
        "rank",
        "entity",
        "score",
        "lo",
        "hi",
        "votes",
        "wins",
        "ties",
        "strength",
        "strength_lo",
        "strength_hi",
    ]
    board.table = table[cols]
    board.style = coefs
    return board
