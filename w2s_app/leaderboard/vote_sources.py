"""Whose verdicts a board is fitted on: people (the default), one automatic judge, or both.

A vote source is a string: `humans`, a judge's voter id `judge:<model>`, or `humans+judge:<model>`.
People's votes are every vote whose voter is not a judge. A judge's outcomes are its pair
verdicts (every pair of answers it compared, judgement table), not just its pick, so a judged
comparison of three answers gives three outcomes; they are grouped by the judge's vote for the
intervals, as a person's outcomes are grouped by theirs.
"""

from __future__ import annotations

import pandas as pd

from ..store.judgements import BOTH, HUMANS, JUDGE_PREFIX, parse_source

RESULT = {"first": 1.0, "second": 0.0, "tie": 0.5}
__all__ = ["BOTH", "HUMANS", "judge_outcomes", "parse_source", "resolve_source", "source_options"]


def source_options(judges: list[str]) -> list[str]:
    """Every source a board can be fitted on, given the judges that voted: people first."""
    return [HUMANS, *judges] + [BOTH + j for j in judges]


def resolve_source(text: str | None, judges: list[str]) -> str:
    """A source from user input: a full source, a model name, or 'judge' / 'both' when one judge voted."""
    text = (text or HUMANS).strip()
    if text in ("judge", "both"):
        if len(judges) != 1:
            known = ", ".join(judges) or "none yet"
            raise ValueError(f"--source {text} needs exactly one judge to have voted; judges: {known}")
        return judges[0] if text == "judge" else BOTH + judges[0]
    if text != HUMANS and not text.startswith((JUDGE_PREFIX, BOTH)):
        text = JUDGE_PREFIX + text  # a bare model name
    _, judge = parse_source(text)
    if judge is not None and judge not in judges:
        known = ", ".join(judges) or "none yet"
        raise ValueError(f"no votes from {judge}; judges that voted: {known}")
    return text


def judge_outcomes(
    judgements: pd.DataFrame, gens: pd.DataFrame, vote_ids: set[int] | None = None
) -> pd.DataFrame:
    """Pairwise outcomes (board.OUTCOME_COLUMNS plus comparison_id) from a judge's pair verdicts.

    Only pairs of a comparison the judge voted on (a failed comparison has no vote) and, with
    `vote_ids`, of those votes; pairs of two answers with one label are left out, as for people.
    """
    cols = ["vote", "a", "b", "ga", "gb", "result", "comparison_id"]
    if judgements.empty:
        return pd.DataFrame(columns=cols)
    rows = judgements[judgements["vote_id"].notna() & judgements["verdict"].isin(list(RESULT))]
    if vote_ids is not None:
        rows = rows[rows["vote_id"].astype(int).isin(vote_ids)]
    labels = gens.set_index("id")["label"].to_dict() if len(gens) else {}
    out = pd.DataFrame(
        {
            "vote": rows["vote_id"].astype(int),
            "a": rows["first_id"].map(labels),
            "b": rows["second_id"].map(labels),
            "ga": rows["first_id"].astype(int),
            "gb": rows["second_id"].astype(int),
            "result": rows["verdict"].map(RESULT).astype(float),
            "comparison_id": rows["comparison_id"].astype(int),
        }
    )
    out = out[out["a"].notna() & out["b"].notna() & (out["a"] != out["b"])]
    return out.reset_index(drop=True)[cols]
