"""Pairwise judging of one comparison: shuffled, both orders, strict replies, one vote at the end.

1. Answers with the same text (twins) are one candidate: the judge sees each distinct text once.
2. The candidates' pairs are visited in a shuffled order, each pair shown in a shuffled order and
   then again swapped. A pair's verdict is the answer both orders chose; when the orders disagree
   (including one tie) the pair is a tie, which cancels a judge's preference for a position.
3. A reply that cannot be read (parse.py) is asked again once, with the rubric's retry message;
   if that fails too the comparison is a recorded failure: no vote, nothing guessed.
4. The vote: each candidate scores 1 per pair it won and 1/2 per tie (Copeland's rule); the one
   with the highest score is the judge's pick, and when two or more share the top the vote is a
   tie. A pick of a twin counts for its twins, as a person's vote does.
5. Every pair of answers gets a judgement row: judged pairs with both orders' replies and cost,
   twins of a judged answer with its verdict ("copied"), twins with each other ("identical", tie).

Randomness is keyed by the judge and the comparison, so a rerun shows the same orders.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Protocol

from ..store.judgements import JudgeItem, PairRecord
from ..twins import twin_groups
from .parse import ParseError, parse_verdict
from .prompt import Rubric

FIRST, SECOND, TIE = "first", "second", "tie"


@dataclass(frozen=True)
class Reply:
    """A judge's raw reply and what it cost."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class Judge(Protocol):
    """Anything that answers chat messages: a model on a server, or a fake in tests."""

    model: str

    def ask(self, messages: list[dict[str, str]]) -> Reply:
        """One reply to the messages (raises on a server failure)."""
        ...


@dataclass
class Outcome:
    """A judged comparison: one row per pair of answers, and the vote (None: a failure)."""

    pairs: list[PairRecord] = field(default_factory=list)
    choice: int | str | None = None


def ask_order(judge: Judge, rubric: Rubric, question: str, shown: tuple[Any, Any], purpose: str) -> dict:
    """Ask about one order of one pair (answers as (id, label, text)); retry once if unreadable."""
    messages = rubric.messages(question, shown[0][2], shown[1][2], purpose)
    call: dict[str, Any] = {"shown": [shown[0][0], shown[1][0]], "verdict": None, "reason": None,
                            "replies": [], "errors": [], "prompt_tokens": 0, "completion_tokens": 0,
                            "seconds": 0.0}  # fmt: skip
    for attempt in range(2):
        started = time.monotonic()
        reply = judge.ask(messages)
        call["seconds"] += reply.seconds or (time.monotonic() - started)
        call["prompt_tokens"] += reply.prompt_tokens
        call["completion_tokens"] += reply.completion_tokens
        call["replies"].append(reply.text)
        try:
            verdict = parse_verdict(reply.text)
        except ParseError as exc:
            call["errors"].append(str(exc))
            if attempt == 0:  # show the judge its reply and ask again, once
                messages = [
                    *messages,
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": rubric.retry},
                ]
            continue
        call["verdict"], call["reason"] = verdict.verdict, verdict.reason
        break
    call["seconds"] = round(call["seconds"], 3)
    return call


def pair_verdict(forward: str, backward: str) -> str:
    """The pair's result for its first answer from both orders' verdicts (A/B/tie each).

    `forward` saw (first, second) as (A, B), `backward` saw them swapped.
    """
    one = {"A": FIRST, "B": SECOND, "tie": TIE}[forward]
    two = {"A": SECOND, "B": FIRST, "tie": TIE}[backward]
    return one if one == two else TIE


def judge_pair(
    judge: Judge, rubric: Rubric, question: str, first: Any, second: Any, purpose: str
) -> PairRecord:
    """Both orders of one pair; the verdict is None when either order stayed unreadable."""
    calls = [ask_order(judge, rubric, question, (first, second), purpose)]
    if calls[0]["verdict"] is not None:
        calls.append(ask_order(judge, rubric, question, (second, first), purpose))
    ok = len(calls) == 2 and calls[1]["verdict"] is not None
    return PairRecord(
        first_id=first[0],
        second_id=second[0],
        verdict=pair_verdict(calls[0]["verdict"], calls[1]["verdict"]) if ok else None,
        status="judged" if ok else "unparsable",
        calls=calls,
        prompt_tokens=sum(c["prompt_tokens"] for c in calls),
        completion_tokens=sum(c["completion_tokens"] for c in calls),
        seconds=round(sum(c["seconds"] for c in calls), 3),
    )


def copeland_choice(candidates: list[int], verdicts: dict[tuple[int, int], str]) -> int | str:
    """The candidate with the most pair wins (ties half), or 'tie' when the top is shared."""
    score = dict.fromkeys(candidates, 0.0)
    for (first, second), verdict in verdicts.items():
        score[first] += {FIRST: 1.0, TIE: 0.5}.get(verdict, 0.0)
        score[second] += {SECOND: 1.0, TIE: 0.5}.get(verdict, 0.0)
    top = max(score.values())
    best = [c for c, s in score.items() if s == top]
    return best[0] if len(best) == 1 else TIE


def judge_comparison(
    judge: Judge, rubric: Rubric, item: JudgeItem, purpose: str = "", key: str = ""
) -> Outcome:
    """Judge every pair of distinct answers of one comparison and decide the vote (module docstring)."""
    rng = random.Random(f"{key or judge.model}:{item.comparison_id}")
    answers = {a[0]: a for a in item.answers}
    groups = {min(g): sorted(g) for g in twin_groups((a[0], a[2]) for a in item.answers)}
    twin_of = {gid: first for first, group in groups.items() for gid in group}
    candidates = sorted({twin_of.get(gid, gid) for gid in answers})
    rng.shuffle(candidates)
    pairs = [(x, y) if rng.random() < 0.5 else (y, x) for x, y in combinations(candidates, 2)]
    rng.shuffle(pairs)
    out = Outcome()
    verdicts: dict[tuple[int, int], str] = {}
    for x, y in pairs:
        record = judge_pair(judge, rubric, item.prompt, answers[x], answers[y], purpose)
        out.pairs.append(record)
        if record.verdict is None:
            return out  # a recorded failure: the remaining pairs are not asked
        verdicts[(x, y)] = record.verdict
    out.pairs += _twin_rows(groups, verdicts)
    out.choice = copeland_choice(candidates, verdicts) if len(candidates) > 1 else TIE
    return out


def _twin_rows(groups: dict[int, list[int]], verdicts: dict[tuple[int, int], str]) -> list[PairRecord]:
    """Rows for answers that were not shown because a twin was: its verdicts copied, ties among twins."""
    rows = [
        PairRecord(a, b, TIE, "identical") for group in groups.values() for a, b in combinations(group, 2)
    ]
    for (x, y), verdict in verdicts.items():
        for a in groups.get(x, [x]):
            for b in groups.get(y, [y]):
                if (a, b) != (x, y):
                    rows.append(PairRecord(a, b, verdict, "copied"))
    return rows
