"""A gold reward beside people and the judge: each arm's mean reward, and how often the reward agrees
with people's votes and with a judge's (shares and Cohen's kappa with intervals, agreement.py).

The reward is read as one more voter that sees every comparison: it "votes" for the answer with the
highest reward (a tie when the best two are equal) and judges every pair by which reward is higher.
It never enters people's board: build_board reads the reward table only for this view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import pandas as pd

from .agreement import Agreement, agreement
from .fit import Z95

REWARD_TABLE_COLUMNS = ["entity", "answers", "reward", "reward_lo", "reward_hi"]
EQUAL = 1e-9  # rewards closer than this are a tie


@dataclass
class GoldView:
    """One reward's table by arm, and its agreement with people and (on a judge's board) the judge."""

    reward: str
    table: pd.DataFrame
    with_people: Agreement
    with_judge: Agreement | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "reward": self.reward,
            "table": self.table.to_dict(orient="records"),
            "with_people": self.with_people.to_dict(),
            "with_judge": self.with_judge.to_dict() if self.with_judge is not None else None,
        }


def reward_table(rewards: pd.DataFrame) -> pd.DataFrame:
    """Mean reward per arm with a 95% normal interval (sd / sqrt(n)), best first."""
    rows = []
    for label, g in rewards.groupby("label"):
        n, mean = len(g), float(g["value"].mean())
        half = Z95 * float(g["value"].std(ddof=1)) / math.sqrt(n) if n > 1 else float("inf")
        rows.append((label, n, round(mean, 4), round(mean - half, 4), round(mean + half, 4)))
    table = pd.DataFrame(rows, columns=REWARD_TABLE_COLUMNS)
    return table.sort_values("reward", ascending=False).reset_index(drop=True)


def reward_votes(rewards: pd.DataFrame, voter: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(votes, pair verdicts) of the reward as a voter, in the frames agreement() reads for a judge."""
    votes, verdicts = [], []
    for n, (cid, g) in enumerate(rewards.groupby("comparison_id")):
        vote_id = -1 - n  # no real vote has a negative id
        ranked = g.sort_values("value", ascending=False)
        values, ids = list(ranked["value"]), list(ranked["generation_id"])
        tie = len(values) > 1 and values[0] - values[1] <= EQUAL
        votes.append((vote_id, cid, "tie" if tie else "generation", None if tie else int(ids[0]), voter))
        by_id = dict(zip(g["generation_id"], g["value"], strict=True))
        for first, second in combinations(sorted(by_id), 2):
            d = by_id[first] - by_id[second]
            verdict = "tie" if abs(d) <= EQUAL else "first" if d > 0 else "second"
            verdicts.append((vote_id, int(cid), int(first), int(second), verdict))
    return (
        pd.DataFrame(votes, columns=["id", "comparison_id", "choice", "generation_id", "voter_id"]),
        pd.DataFrame(verdicts, columns=["vote_id", "comparison_id", "first_id", "second_id", "verdict"]),
    )


def gold_views(
    rewards: pd.DataFrame, people: pd.DataFrame, gens: pd.DataFrame, judge_votes: pd.DataFrame | None = None,
    judgements: pd.DataFrame | None = None, judge: str | None = None,
) -> list[GoldView]:  # fmt: skip
    """One view per reward stored for these answers (none: an empty list)."""
    views = []
    for name, g in rewards.groupby("reward"):
        voter = f"reward:{name}"
        votes, verdicts = reward_votes(g, voter)
        with_judge = None
        if judge_votes is not None and judge is not None and len(judge_votes):
            # The judge in the people's seat: how often the reward agrees with the judge's votes.
            with_judge = agreement(judge_votes, votes, gens, verdicts, voter)
        views.append(
            GoldView(str(name), reward_table(g), agreement(people, votes, gens, verdicts, voter), with_judge)
        )
    return views


def gold_text(views: list[GoldView]) -> str:
    """The reward tables and agreements, for a terminal."""
    lines = []
    for v in views:
        lines += [f"gold reward {v.reward} (mean per answer, 95% interval; never part of people's board):",
                  v.table.to_string(index=False), "people vs reward: " + v.with_people.summary()]  # fmt: skip
        if v.with_judge is not None:
            lines.append("judge vs reward: " + v.with_judge.summary())
    return "\n".join(lines)
