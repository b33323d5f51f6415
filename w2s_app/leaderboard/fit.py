"""Penalised Bradley-Terry fit (optionally with style covariates) and intervals that match the sample.

Model. Each pairwise outcome r between entities a and b (result y = 1 win, 0.5 tie, 0 loss for a)
has P(a beats b) = sigmoid(theta_a - theta_b + beta . z_r), where z_r are optional covariates (the
style differences of style control; none in the plain fit).

Prior. The log-strengths are a priori independent normal, theta_i ~ N(0, s^2), with s = 100 Elo
points (PRIOR_ELO; 0.576 in natural units); style coefficients are N(0, 1) per unit-RMS style
difference. The estimate is the posterior mode (a ridge penalty). Why this strength: decoding
methods of one strong model rarely differ by more than 200 Elo (a 76 % win rate), which is two
prior standard deviations; the prior weighs about as much as a dozen decided pairwise outcomes per
entity, so one vote moves a score by tens of points (not 1300) and with a few hundred votes the
data speak (the pull toward the mean is then about 1 % of a difference). The prior is also what
pins the mean of the scores at zero, so no separate normalisation is needed.

Intervals. A vote gives several pairwise outcomes that share one rater and one decision (a vote
for A among A, B, C makes A beat B and A beat C), so the product of pairwise likelihoods overstates
the information and its curvature gives intervals that are too narrow. A bootstrap of votes has the
opposite failure at small samples: with one vote every resample is that vote and the interval has
zero width. The covariance used here is the sandwich H^-1 K H^-1 of the penalised fit, where H is
the curvature of the penalised objective and K the sum, over votes (the clusters), of the outer
products of each vote's score, plus the prior precision (the prior counted as one more independent
observation). With no votes this is the prior; with many it is the cluster-robust covariance. The
cluster part is scaled by G/(G-1) for G votes (the usual small-sample correction). Strength
intervals are for scores relative to the mean, as they are shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ELO = 400 / math.log(10)
PRIOR_ELO = 100.0
PRIOR_SD = PRIOR_ELO / ELO  # natural units (log-odds)
STYLE_PRIOR_SD = 1.0
Z95 = 1.959963984540054  # two-sided 95 % normal quantile
MLE_RIDGE = 1e-4  # without a prior: keeps the optimum finite when an entity never loses


@dataclass
class Fit:
    """Posterior mode and covariance of (strengths, covariate coefficients)."""

    params: np.ndarray
    cov: np.ndarray  # strengths block relative to their mean
    n: int  # number of entities (the first n parameters)

    @property
    def theta(self) -> np.ndarray:
        """Log-strengths, mean zero."""
        return self.params[: self.n]

    @property
    def beta(self) -> np.ndarray:
        """Covariate coefficients."""
        return self.params[self.n :]

    @property
    def sd(self) -> np.ndarray:
        """Standard errors of the log-strengths (relative to the mean)."""
        return np.sqrt(np.clip(np.diag(self.cov)[: self.n], 0, None))

    def interval(self, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) of the log-strengths: theta -/+ z standard errors."""
        return self.theta - z * self.sd, self.theta + z * self.sd

    def difference_sd(self, i: int, j: int) -> float:
        """Standard error of theta_i - theta_j."""
        c = self.cov
        return float(math.sqrt(max(0.0, c[i, i] + c[j, j] - 2 * c[i, j])))


def prior_precision(n: int, k: int = 0, prior_sd: float | None = PRIOR_SD) -> np.ndarray:
    """Diagonal prior precision of n strengths and k coefficients (a tiny ridge when prior_sd is None)."""
    if prior_sd is None:
        return np.full(n + k, 2 * MLE_RIDGE)
    return np.concatenate([np.full(n, 1 / prior_sd**2), np.full(k, 1 / STYLE_PRIOR_SD**2)])


def fit(
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    n: int,
    z: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    prior_sd: float | None = PRIOR_SD,
    with_cov: bool = True,
) -> Fit:
    """Posterior mode of the (covariate) Bradley-Terry model and its sandwich covariance."""
    z = np.zeros((len(y), 0)) if z is None else np.asarray(z, dtype=float).reshape(len(y), -1)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    k = z.shape[1]
    lam = prior_precision(n, k, prior_sd)

    def margin(params: np.ndarray) -> np.ndarray:
        return params[a] - params[b] + z @ params[n:]

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        d = margin(params)
        # log p = -log(1 + e^-d), log(1 - p) = -log(1 + e^d), computed without overflow.
        nll = np.sum(w * (y * np.logaddexp(0, -d) + (1 - y) * np.logaddexp(0, d)))
        r = w * (_sigmoid(d) - y)
        return float(nll + 0.5 * params @ (lam * params)), _gradient(r, a, b, z, n) + lam * params

    def hess(params: np.ndarray) -> np.ndarray:
        p = _sigmoid(margin(params))
        return _hessian(w * p * (1 - p), a, b, z, n) + np.diag(lam)

    # A second-order method: strengths and style are often nearly collinear and a first-order one
    # stops early. The objective is strictly convex (the prior), so the optimum is unique.
    from scipy.optimize import minimize  # here: ~0.5 s to import, and only a fit needs it

    params = minimize(loss, np.zeros(n + k), jac=True, hess=hess, method="trust-exact").x
    params[:n] -= params[:n].mean()  # exact with a prior; pins the free direction without one
    if not with_cov:
        return Fit(params, np.zeros((n + k, n + k)), n)
    return Fit(params, _sandwich(params, a, b, y, z, w, clusters, lam, n), n)


def _gradient(r: np.ndarray, a: np.ndarray, b: np.ndarray, z: np.ndarray, n: int) -> np.ndarray:
    """Gradient of the negative log-likelihood from the per-row residuals r = w (p - y)."""
    g = np.bincount(a, r, minlength=n) - np.bincount(b, r, minlength=n)
    return np.concatenate([g, z.T @ r])


def _hessian(v: np.ndarray, a: np.ndarray, b: np.ndarray, z: np.ndarray, n: int) -> np.ndarray:
    """Sum over rows of v x x^T, where x = e_a - e_b followed by z."""
    k = z.shape[1]
    h = np.zeros((n + k, n + k))
    np.add.at(h, (a, a), v)
    np.add.at(h, (b, b), v)
    np.add.at(h, (a, b), -v)
    np.add.at(h, (b, a), -v)
    if k:
        vz = v[:, None] * z
        cross = np.zeros((n, k))
        np.add.at(cross, a, vz)
        np.add.at(cross, b, -vz)
        h[:n, n:] = cross
        h[n:, :n] = cross.T
        h[n:, n:] = z.T @ vz
    return h


def _sandwich(
    params: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    w: np.ndarray,
    clusters: np.ndarray | None,
    lam: np.ndarray,
    n: int,
) -> np.ndarray:
    """H^-1 (K + prior) H^-1, centred on the mean strength (see the module docstring)."""
    k = z.shape[1]
    p = _sigmoid(params[a] - params[b] + z @ params[n:])
    h = _hessian(w * p * (1 - p), a, b, z, n) + np.diag(lam)
    codes = np.arange(len(y)) if clusters is None else np.unique(clusters, return_inverse=True)[1]
    groups = int(codes.max()) + 1 if len(codes) else 0
    r = w * (p - y)
    scores = np.zeros((groups, n + k))
    np.add.at(scores, (codes, a), r)
    np.add.at(scores, (codes, b), -r)
    if k:
        np.add.at(scores[:, n:], codes, r[:, None] * z)
    meat = scores.T @ scores * (groups / (groups - 1) if groups > 1 else 1.0) + np.diag(lam)
    hinv = np.linalg.inv(h)
    cov = hinv @ meat @ hinv
    centre = np.eye(n + k)
    centre[:n, :n] -= 1.0 / n
    return centre @ cov @ centre.T


def _sigmoid(d: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 0.5 * (1 + np.tanh(0.5 * d))
