"""Style-controlled Bradley-Terry (Chatbot Arena's style control): strengths net of answer style.

Each pairwise outcome gets, beside the two entities, the normalised difference of each style
feature, (f_a - f_b) / (f_a + f_b): answer length and markdown (headers, list items, bold spans),
scaled to unit root-mean-square. A logistic model P(a beats b) = sigmoid(theta_a - theta_b +
beta . z) then gives strengths theta with the style effect beta taken out. The outcomes are the
plain board's (board.outcomes_from_votes), twins included: a vote for one twin counts for the group
and the twins tie each other. Prior and intervals as in the plain fit (fit.py); the style
coefficients have a N(0, 1) prior.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from . import fit as bt
from .board import board_from_outcomes, outcomes_from_votes
from .fit import PRIOR_SD

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
    """Pairwise outcomes of the votes with the style differences of both sides (vote, a, b, ga, gb, result, ...)."""

    return with_style_differences(outcomes_from_votes(votes, gens), texts)


def with_style_differences(outcomes: pd.DataFrame, texts: dict[int, str]) -> pd.DataFrame:
    """Outcomes (with generation ids ga, gb) plus one column per feature: (f_a - f_b) / (f_a + f_b)."""
    out = outcomes.copy()
    ids = set(out["ga"]) | set(out["gb"]) if len(out) else set()
    feats = {gid: style_features(texts.get(int(gid), "")) for gid in ids}
    fa = np.array([feats[g] for g in out["ga"]]).reshape(-1, len(FEATURES))
    fb = np.array([feats[g] for g in out["gb"]]).reshape(-1, len(FEATURES))
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.where(fa + fb > 0, (fa - fb) / (fa + fb), 0.0)
    for i, name in enumerate(FEATURES):
        out[name] = diff[:, i]
    return out


def style_covariates(outcomes: pd.DataFrame) -> np.ndarray:
    """The feature columns scaled to unit root-mean-square (a feature that never varies stays 0)."""
    raw = outcomes[list(FEATURES)].to_numpy(dtype=float).reshape(-1, len(FEATURES))
    # Scaled, not centred: side a is the winner in every decisive outcome, so centring would add
    # an "a wins" intercept; unscaled-by-mean differences keep the model symmetric in a and b.
    scale = np.sqrt((raw**2).mean(axis=0)) if len(raw) else np.zeros(len(FEATURES))
    return np.where(scale > 0, raw / np.where(scale > 0, scale, 1), 0.0)


def fit_style(
    a: np.ndarray,
    b: np.ndarray,
    z: np.ndarray,
    y: np.ndarray,
    n: int,
    weights: np.ndarray | None = None,
    prior_sd: float | None = PRIOR_SD,
) -> tuple[np.ndarray, np.ndarray]:
    """Log-strengths (mean zero) and style coefficients: the posterior mode (fit.py)."""
    result = bt.fit(a, b, y, n, z=z, weights=weights, prior_sd=prior_sd, with_cov=False)
    return result.theta, result.beta


def style_strengths(
    outcomes: pd.DataFrame, entities: list[str], n_boot: int = 0, seed: int = 0, prior_sd: float = PRIOR_SD
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """(theta, lo, hi, coefficients): the style-controlled fit with 95% intervals (n_boot, seed unused)."""
    index = {e: i for i, e in enumerate(entities)}
    a = outcomes["a"].map(index).to_numpy(dtype=int)
    b = outcomes["b"].map(index).to_numpy(dtype=int)
    y = outcomes["result"].to_numpy(dtype=float)
    result = bt.fit(
        a, b, y, len(entities), z=style_covariates(outcomes), clusters=outcomes["vote"].to_numpy(),
        prior_sd=prior_sd,
    )  # fmt: skip
    lo, hi = result.interval()
    return result.theta, lo, hi, {f: float(c) for f, c in zip(FEATURES, result.beta, strict=True)}


def style_board(outcomes: pd.DataFrame, votes: pd.DataFrame, gens: pd.DataFrame, texts: dict[int, str],
                vote_source: str = "humans") -> Any:  # fmt: skip
    """The board of some outcomes fitted net of style (board.board_from_outcomes with covariates)."""
    with_style = with_style_differences(outcomes, texts)
    z = style_covariates(with_style)
    return board_from_outcomes(with_style, votes, gens, z=z, vote_source=vote_source, z_names=FEATURES)
