"""Agreement between people and an automatic judge, on the comparisons both voted on.

Per vote: a person's vote and the judge's vote on the same comparison agree when they name the
same answer, or both say tie (`all_bad` counts as a tie: the board treats both alike). An answer
is named by its method label; a vote for one twin names the whole twin group. Reported: the share
of votes that agree, with a 95% Wilson interval, and Cohen's kappa (agreement beyond what the two
sides' own vote shares would give by chance: 1 is a judge that always agrees, 0 one that agrees
only as often as chance, below 0 worse than chance). Kappa's interval is the Wilson interval of the
observed agreement mapped through kappa = (p - p_chance) / (1 - p_chance) with the chance agreement
taken from the observed shares; it ignores the smaller uncertainty of the chance term, and a
judge's vote shared by several people's votes on one comparison counts once per person.

Per method pair: on comparisons where both sides have an outcome between the two methods (a
person's vote for A gives A over B and A over C, but nothing between B and C), the person's and
the judge's record (wins of the first method, of the second, ties), who each side favours, and the
share of those outcomes where the two agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..store.judgements import human_votes
from .board import in_preset, outcomes_from_votes, twin_ids, winning_ids
from .pairs import wilson
from .quality import filter_votes
from .vote_sources import judge_outcomes

TIE = "tie"
PAIR_COLUMNS = [
    "a", "b", "comparisons", "humans_a", "humans_b", "humans_tie", "judge_a", "judge_b", "judge_tie",
    "humans_favour", "judge_favours", "agree",
]  # fmt: skip


@dataclass
class Agreement:
    """People against one judge on the comparisons both voted on."""

    judge: str
    items: int = 0  # people's votes on comparisons the judge also voted on
    comparisons: int = 0
    agree: int = 0
    share: float = float("nan")
    share_lo: float = 0.0
    share_hi: float = 1.0
    chance: float = float("nan")
    kappa: float = float("nan")
    kappa_lo: float = float("nan")
    kappa_hi: float = float("nan")
    confusion: pd.DataFrame = field(default_factory=pd.DataFrame)  # people's choice x judge's choice
    pairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIR_COLUMNS))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (NaN as None)."""
        out: dict[str, Any] = {
            k: (None if isinstance(v, float) and np.isnan(v) else v)
            for k, v in self.__dict__.items()
            if k not in ("confusion", "pairs")
        }
        out["pairs"] = json.loads(self.pairs.to_json(orient="records"))
        out["confusion"] = json.loads(self.confusion.to_json(orient="index")) if len(self.confusion) else {}
        return out

    def summary(self) -> str:
        """One paragraph for the page and the CLI."""
        if not self.items:
            return f"No comparison has votes from both people and {self.judge} yet."
        return (
            f"On {self.comparisons} comparisons ({self.items} people's votes) {self.judge} agreed with "
            f"people {self.agree} times: {self.share:.0%} (95% interval {self.share_lo:.0%} to "
            f"{self.share_hi:.0%}); chance alone would give {self.chance:.0%}. Cohen's kappa "
            f"{self.kappa:.2f} (95% interval {self.kappa_lo:.2f} to {self.kappa_hi:.2f})."
        )


def cohen_kappa(first: list[Any], second: list[Any]) -> tuple[float, float, float]:
    """(kappa, observed agreement, chance agreement) of two raters' labels on the same items."""
    a, b = pd.Series(first, dtype=object), pd.Series(second, dtype=object)
    if not len(a):
        return float("nan"), float("nan"), float("nan")
    observed = float((a.to_numpy() == b.to_numpy()).mean())
    pa, pb = a.value_counts(normalize=True), b.value_counts(normalize=True)
    chance = float(sum(pa[k] * pb.get(k, 0.0) for k in pa.index))
    kappa = (observed - chance) / (1 - chance) if chance < 1 else float("nan")
    return kappa, observed, chance


def kappa_interval(agree: int, items: int, chance: float) -> tuple[float, float]:
    """95% interval of kappa: the Wilson interval of the agreement, mapped through kappa's formula."""
    if items <= 0 or not chance < 1:
        return float("nan"), float("nan")
    lo, hi = wilson(agree, items)
    return max(-1.0, (lo - chance) / (1 - chance)), min(1.0, (hi - chance) / (1 - chance))


def vote_choices(votes: pd.DataFrame, gens: pd.DataFrame) -> pd.Series:
    """Each vote's choice as a category: the chosen label (twins joined by ' = ') or 'tie'; by vote id."""
    done = gens[gens["status"] == "done"]
    by_comp: dict[Any, dict[Any, str]] = {}  # one pass over the columns: a groupby per comparison is slow
    for cid, gid, label in zip(done["comparison_id"], done["id"], done["label"], strict=True):
        by_comp.setdefault(cid, {})[gid] = label
    twin = twin_ids(done)
    out = {}
    for v in votes.itertuples():
        if v.choice != "generation":
            out[v.id] = TIE
            continue
        labels = by_comp.get(v.comparison_id, {})
        if v.generation_id in labels:
            out[v.id] = " = ".join(sorted({labels[g] for g in winning_ids(v.generation_id, labels, twin)}))
    return pd.Series(out, dtype=object)


def agreement(
    people: pd.DataFrame, judge_votes: pd.DataFrame, gens: pd.DataFrame, judgements: pd.DataFrame, judge: str
) -> Agreement:
    """Agreement of people's votes with one judge's votes and pair verdicts (see the module docstring)."""
    shared = set(people["comparison_id"]) & set(judge_votes["comparison_id"]) if len(people) else set()
    people = people[people["comparison_id"].isin(shared)]
    judge_votes = judge_votes[judge_votes["comparison_id"].isin(shared)]
    if not len(people):
        return Agreement(judge)
    mine = vote_choices(people, gens)
    theirs_by_comp = vote_choices(judge_votes, gens).rename(judge_votes.set_index("id")["comparison_id"])
    items = pd.DataFrame({"human": mine, "comparison_id": people.set_index("id")["comparison_id"]}).dropna()
    items["judge"] = items["comparison_id"].map(theirs_by_comp)
    items = items.dropna()
    kappa, observed, chance = cohen_kappa(list(items["human"]), list(items["judge"]))
    agree = int((items["human"] == items["judge"]).sum())
    lo, hi = wilson(agree, len(items))
    k_lo, k_hi = kappa_interval(agree, len(items), chance)
    return Agreement(
        judge=judge,
        items=len(items),
        comparisons=int(items["comparison_id"].nunique()),
        agree=agree,
        share=observed,
        share_lo=lo,
        share_hi=hi,
        chance=chance,
        kappa=kappa,
        kappa_lo=k_lo,
        kappa_hi=k_hi,
        confusion=pd.crosstab(items["human"], items["judge"]).rename_axis(index="people", columns=judge),
        pairs=pair_agreement(people, judge_votes, gens, judgements),
    )


def pair_agreement(
    people: pd.DataFrame, judge_votes: pd.DataFrame, gens: pd.DataFrame, judgements: pd.DataFrame
) -> pd.DataFrame:
    """Per method pair: people's and the judge's records on the same comparisons, and how often they agree."""
    human = outcomes_from_votes(people, gens)
    if human.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    human["comparison_id"] = human["vote"].map(people.set_index("id")["comparison_id"])
    machine = judge_outcomes(judgements, gens, set(judge_votes["id"].astype(int)))
    human, machine = _oriented(human), _oriented(machine)
    verdict = machine.drop_duplicates(["comparison_id", "a", "b"]).set_index(["comparison_id", "a", "b"])["y"]
    human["judge"] = [verdict.get(k, np.nan) for k in zip(human["comparison_id"], human["a"], human["b"])]
    human = human.dropna(subset=["judge"])
    rows = []
    for (a, b), g in human.groupby(["a", "b"]):
        per_comp = g.drop_duplicates("comparison_id")["judge"]
        h = _record(g["y"])
        j = _record(per_comp)
        rows.append(
            (a, b, int(g["comparison_id"].nunique()), *h, *j, _favour(a, b, h), _favour(a, b, j),
             round(float((g["y"] == g["judge"]).mean()), 3))
        )  # fmt: skip
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _oriented(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Outcomes with a before b alphabetically and y the result for a."""
    swap = outcomes["a"] > outcomes["b"]
    return pd.DataFrame(
        {
            "comparison_id": outcomes["comparison_id"].to_numpy(),
            "a": outcomes["a"].where(~swap, outcomes["b"]).to_numpy(),
            "b": outcomes["b"].where(~swap, outcomes["a"]).to_numpy(),
            "y": outcomes["result"].where(~swap, 1 - outcomes["result"]).astype(float).to_numpy(),
        }
    )


def _record(results: pd.Series) -> tuple[int, int, int]:
    """(wins of a, wins of b, ties)."""
    return int((results == 1).sum()), int((results == 0).sum()), int((results == 0.5).sum())


def _favour(a: str, b: str, record: tuple[int, int, int]) -> str:
    """Who wins more often: a, b, or 'even'."""
    return a if record[0] > record[1] else b if record[1] > record[0] else "even"


def agreement_view(
    store: Any, judge: str, preset: str = "", min_vote_seconds: float = 0.0, drop_one_position: bool = False
) -> Agreement:
    """The agreement of people (blind votes, filtered as on the board) with one judge, from the store."""
    votes, gens, comps = store.leaderboard_frames(preset or None)
    votes, gens = in_preset(votes, gens, comps, preset or None)
    people = filter_votes(human_votes(votes), gens, min_vote_seconds, drop_one_position)
    judge_votes = votes[votes["voter_id"] == judge] if len(votes) else votes
    return agreement(people, judge_votes, gens, store.judgement_frame(preset or None, judge), judge)
