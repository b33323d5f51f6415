"""Adaptive arm choice against uniform, on simulated arenas with known strengths.

    python -m benchmarks.sim_arms                 # 200 arenas per mode (a few minutes)
    python -m benchmarks.sim_arms --arenas 40     # a quick look

Each arena has arms of known Bradley-Terry strengths (some close, some far apart). A comparison
shows `--columns` arms; the rater picks one with probability proportional to exp(strength), or
calls a tie (`--ties` of the votes: every pair shown ties), as the app records votes. The fit is
the app's own (leaderboard.fit: penalised Bradley-Terry, sandwich covariance clustered by vote),
weighted by the inverse probability of the shown set under the adaptive policy.

Printed per mode: votes until every difference between adjacent arms (in the true order) has a
95 % half-width below `--target` Elo (median, mean, and the ratio adaptive / uniform), and the
coverage of the 95 % intervals of the adjacent differences and of the scores at a fixed number
of votes (`--budget`; default: uniform's median stopping point).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from w2s_app.leaderboard.arm_choice import arm_sets, choose_set, information_of, set_information
from w2s_app.leaderboard.fit import ELO, Z95, fit

WEIGHTED = True
FLOOR = 0.25
STRENGTHS_ELO = (0.0, 25.0, 50.0, 150.0, 175.0, 300.0)  # three close pairs, two far gaps


class Arena:
    """One simulated arena: votes drawn from true strengths, fitted like the app fits them."""

    def __init__(self, truth: np.ndarray, columns: int, ties: float, policy: str, seed: int) -> None:
        self.truth, self.columns, self.ties, self.policy = truth, columns, ties, policy
        self.rng = np.random.default_rng(seed)
        self.rows_a: list[int] = []
        self.rows_b: list[int] = []
        self.rows_y: list[float] = []
        self.rows_w: list[float] = []
        self.rows_vote: list[int] = []
        self.shown: dict[tuple[int, ...], int] = {}
        self.theta = np.zeros(len(truth))
        self.info = np.zeros((len(truth), len(truth)))
        self.votes = 0

    def vote(self) -> None:
        """Show a set under the policy, draw the rater's vote, record its pairwise outcomes."""
        choice = choose_set(self.theta, self.info, self.columns, self.rng, self.policy, FLOOR)
        arms = choice.arms
        self.shown[arms] = self.shown.get(arms, 0) + 1
        self.info += set_information(self.theta, arms)
        if self.rng.random() < self.ties:
            rows = [(i, j, 0.5) for k, i in enumerate(arms) for j in arms[k + 1 :]]
        else:
            strength = np.exp(self.truth[list(arms)])
            won = arms[int(self.rng.choice(len(arms), p=strength / strength.sum()))]
            rows = [(won, other, 1.0) for other in arms if other != won]
        for a, b, y in rows:
            self.rows_a.append(a)
            self.rows_b.append(b)
            self.rows_y.append(y)
            self.rows_w.append(choice.weight if WEIGHTED else 1.0)
            self.rows_vote.append(self.votes)
        self.votes += 1

    def refit(self):
        """Fit the votes so far; the choice rule then uses the new strengths."""
        result = fit(
            np.array(self.rows_a),
            np.array(self.rows_b),
            np.array(self.rows_y),
            len(self.truth),
            weights=np.array(self.rows_w),
            clusters=np.array(self.rows_vote),
        )
        self.theta = result.theta.copy()
        self.info = information_of(self.theta, self.shown)
        return result


def estimand(truth: np.ndarray, columns: int, ties: float) -> np.ndarray:
    """What the fit estimates with endless uniform votes: the strengths the votes' pairwise outcomes imply.

    Ties (outcome 0.5 whatever the strengths) pull the fitted strengths together, so the values the
    intervals must cover are these, not the strengths the rater draws from.
    """
    rows = []
    for arms in arm_sets(len(truth), columns):
        strength = np.exp(truth[list(arms)])
        for k, won in enumerate(arms):
            share = (1 - ties) * strength[k] / strength.sum()
            rows += [(won, other, 1.0, share) for other in arms if other != won]
        rows += [(i, j, 0.5, ties) for n, i in enumerate(arms) for j in arms[n + 1 :]]
    a, b, y, w = (np.array(c) for c in zip(*rows))
    return fit(
        a.astype(int), b.astype(int), y, len(truth), weights=w * 1e6, prior_sd=None, with_cov=False
    ).theta


def adjacent_pairs(truth: np.ndarray) -> list[tuple[int, int]]:
    """Neighbours in the true order, best first."""
    order = np.argsort(-truth)
    return list(itertools.pairwise(order))


def run_arena(truth, columns, ties, policy, seed, target, budget, every, cap):
    """(votes until every adjacent half-width <= target, covered flags at the budget)."""
    arena = Arena(truth, columns, ties, policy, seed)
    truth = estimand(truth, columns, ties)  # what the intervals must cover
    pairs = adjacent_pairs(truth)
    stopped, covered = None, None
    while arena.votes < cap and (stopped is None or (budget and covered is None)):
        for _ in range(every):
            arena.vote()
        result = arena.refit()
        widths = [Z95 * result.difference_sd(i, j) * ELO for i, j in pairs]
        if stopped is None and max(widths) <= target:
            stopped = arena.votes
        if budget and covered is None and arena.votes >= budget:
            centred = truth - truth.mean()
            lo, hi = result.interval()
            diffs = [
                abs((result.theta[i] - result.theta[j]) - (truth[i] - truth[j]))
                <= Z95 * result.difference_sd(i, j)
                for i, j in pairs
            ]
            covered = (np.array(diffs), (lo <= centred) & (centred <= hi))
    return stopped if stopped is not None else cap, covered


def main(argv: list[str] | None = None) -> None:
    """Run both policies on the same arenas and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arenas", type=int, default=200)
    ap.add_argument("--columns", type=int, default=3)
    ap.add_argument("--ties", type=float, default=0.15)
    ap.add_argument("--target", type=float, default=60.0, help="95%% half-width in Elo to reach")
    ap.add_argument("--budget", type=int, default=0, help="votes at which coverage is taken (0: auto)")
    ap.add_argument("--every", type=int, default=20, help="votes between refits")
    ap.add_argument("--cap", type=int, default=6000)
    ap.add_argument("--strengths", default=",".join(f"{s:g}" for s in STRENGTHS_ELO), help="Elo")
    ap.add_argument("--floor", type=float, default=0.25)
    ap.add_argument("--unweighted", action="store_true", help="no inverse-probability weights (biased)")
    args = ap.parse_args(argv)
    global WEIGHTED, FLOOR
    FLOOR = args.floor
    WEIGHTED = not args.unweighted
    truth = np.array([float(s) for s in args.strengths.split(",")]) / ELO
    results = {}
    budget = args.budget
    for policy in ("uniform", "adaptive"):
        stops, diff_cover, score_cover = [], [], []
        # Uniform runs first without coverage (budget 0): its median stopping point is the budget.
        for k in range(args.arenas):
            stop, covered = run_arena(
                truth, args.columns, args.ties, policy, 1000 + k, args.target, budget, args.every, args.cap
            )
            stops.append(stop)
            if covered is not None:
                diff_cover.append(covered[0])
                score_cover.append(covered[1])
        results[policy] = (np.array(stops), np.array(diff_cover), np.array(score_cover))
        if policy == "uniform" and not args.budget:
            budget = int(np.median(stops))
            # Coverage for uniform at its own median: rerun with that budget (same seeds, same votes).
            diff_cover, score_cover = [], []
            for k in range(args.arenas):
                _, covered = run_arena(
                    truth, args.columns, args.ties, policy, 1000 + k, args.target, budget, args.every, budget
                )
                diff_cover.append(covered[0])
                score_cover.append(covered[1])
            results[policy] = (np.array(stops), np.array(diff_cover), np.array(score_cover))
    print(f"arms (Elo): {args.strengths}; {args.columns} columns; ties {args.ties:.0%}; "
          f"target half-width {args.target:g} Elo on adjacent differences; {args.arenas} arenas per mode")  # fmt: skip
    print(f"coverage taken at {budget} votes")
    print(
        "| policy | votes to target: median | mean | 90th pct | adjacent-difference coverage | score coverage |"
    )
    print("|---|---|---|---|---|---|")
    for policy, (stops, dc, sc) in results.items():
        print(
            f"| {policy} | {np.median(stops):.0f} | {stops.mean():.0f} | {np.percentile(stops, 90):.0f} | "
            f"{dc.mean():.1%} | {sc.mean():.1%} |"
        )
    u, a = results["uniform"][0], results["adaptive"][0]
    print(
        f"adaptive / uniform votes: median {np.median(a) / np.median(u):.2f}, mean {a.mean() / u.mean():.2f}"
    )


if __name__ == "__main__":
    main()
