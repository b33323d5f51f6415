"""What automatic judges read and write: comparisons to judge, their verdicts, and judge votes.

A judge's verdict on a comparison is an ordinary vote whose voter id is `judge:<model>` (so one
verdict per judge and comparison, enforced by the vote table's unique constraint); the `judgement`
table keeps each pair of answers the judge compared, with both orders, raw replies and cost. The
methods here are mixed into `Store`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from .models import Comparison, Generation, Judgement, Vote

JUDGE_PREFIX = "judge:"
HUMANS = "humans"  # vote sources: whose votes a board or an export holds (see parse_source)
BOTH = "humans+"
ALL = "all"
JUDGEMENT_COLUMNS = [
    "id", "comparison_id", "vote_id", "judge", "prompt_version", "first_id", "second_id", "verdict",
    "status", "prompt_tokens", "completion_tokens", "seconds", "created_at",
]  # fmt: skip


def judge_voter(model: str) -> str:
    """The voter id of a judge model."""
    return JUDGE_PREFIX + model


def is_judge(voter_id: Any) -> bool:
    """True for a judge's voter id (judge:<model>)."""
    return isinstance(voter_id, str) and voter_id.startswith(JUDGE_PREFIX)


def human_votes(votes: pd.DataFrame) -> pd.DataFrame:
    """The votes cast by people: every vote whose voter is not a judge (frames without voter ids pass)."""
    if "voter_id" not in votes or votes.empty:
        return votes
    return votes[~votes["voter_id"].map(is_judge)]


def parse_source(vote_source: str | None) -> tuple[bool, str | None]:
    """(people included, judge voter id or None) of a vote source; ValueError when malformed.

    A vote source is `humans`, a judge's voter id `judge:<model>`, or `humans+judge:<model>`.
    """
    text = (vote_source or HUMANS).strip()
    if text == HUMANS:
        return True, None
    humans = text.startswith(BOTH)
    judge = text[len(BOTH) :] if humans else text
    if not is_judge(judge) or len(judge) <= len(JUDGE_PREFIX):
        raise ValueError(
            f"unknown source {vote_source!r}: use {HUMANS!r}, '{JUDGE_PREFIX}<model>' or '{BOTH}{JUDGE_PREFIX}<model>'"
        )
    return humans, judge


def votes_of_source(votes: pd.DataFrame, vote_source: str | None = HUMANS) -> pd.DataFrame:
    """The votes of a vote source (`all`: every vote, people's and every judge's)."""
    if vote_source == ALL or votes.empty:
        return votes
    humans, judge = parse_source(vote_source)
    keep = ~votes["voter_id"].map(is_judge) if humans else pd.Series(False, index=votes.index)
    if judge is not None:
        keep |= votes["voter_id"] == judge
    return votes[keep]


@dataclass(frozen=True)
class JudgeItem:
    """A comparison as a judge sees it: the prompt and its successful answers by display position."""

    comparison_id: int
    prompt: str
    preset: str
    answers: list[tuple[int, str, str]]  # (generation id, label, text)


@dataclass
class PairRecord:
    """One judgement row to write (see models.Judgement)."""

    first_id: int
    second_id: int
    verdict: str | None
    status: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class JudgeRecords:
    """Store methods for automatic judges (mixed into Store, which provides engine and sessions)."""

    engine: Any
    sessions: Any

    def judge_todo(
        self,
        judge: str,
        prompt_version: str,
        preset: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        retry_failed: bool = False,
    ) -> list[int]:
        """Ids of finished comparisons (two or more answers) this judge has not judged, oldest first.

        A comparison whose judging failed under this prompt version is skipped unless
        `retry_failed`; a failure under another version is tried again.
        """
        answered = (
            select(Generation.comparison_id)
            .where(Generation.status == "done")
            .group_by(Generation.comparison_id)
            .having(func.count() >= 2)
        )
        voted = select(Vote.comparison_id).where(Vote.voter_id == judge)
        q = select(Comparison.id, Comparison.created_at).where(
            Comparison.status == "done", Comparison.id.in_(answered), ~Comparison.id.in_(voted)
        )
        if not retry_failed:
            failed = select(Judgement.comparison_id).where(
                Judgement.judge == judge,
                Judgement.vote_id.is_(None),
                Judgement.prompt_version == prompt_version,
            )
            q = q.where(~Comparison.id.in_(failed))
        if preset:
            q = q.where(Comparison.preset == preset)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(Comparison.id)).all()
        if since is not None:
            # Compared here, not in SQL: SQLite keeps naive UTC, PostgreSQL aware timestamps.
            rows = [r for r in rows if _aware(r.created_at) >= _aware(since)]
        ids = [int(r.id) for r in rows]
        return ids[:limit] if limit is not None else ids

    def judge_item(self, comparison_id: int) -> JudgeItem:
        """The prompt and successful answers of one comparison (KeyError when there is none)."""
        with self.sessions() as s:
            row = s.get(Comparison, comparison_id)
            if row is None:
                raise KeyError(f"comparison {comparison_id} does not exist")
            answers = [(g.id, g.label, g.text or "") for g in row.generations if g.status == "done"]
            return JudgeItem(row.id, row.prompt, row.preset, answers)

    def record_judgement(
        self,
        comparison_id: int,
        judge: str,
        prompt_version: str,
        pairs: list[PairRecord],
        choice: int | str | None,
    ) -> int | None:
        """Write a judge's pairs and, unless `choice` is None (a failure), its vote, in one transaction.

        `choice` is a generation id or 'tie'. Earlier failed rows of this judge on this comparison
        are replaced. Returns the vote id; None for a failure or when the judge had already voted
        (then nothing is written).
        """
        if not is_judge(judge):
            raise ValueError(f"a judge's voter id starts with {JUDGE_PREFIX!r}, got {judge!r}")
        try:
            with self.sessions.begin() as s:
                s.execute(
                    delete(Judgement).where(
                        Judgement.comparison_id == comparison_id,
                        Judgement.judge == judge,
                        Judgement.vote_id.is_(None),
                    )
                )
                vote_id = None
                if choice is not None:
                    tie = choice == "tie"
                    vote = Vote(
                        comparison_id=comparison_id,
                        voter_id=judge,
                        choice="tie" if tie else "generation",
                        generation_id=None if tie else int(choice),
                        blind=True,  # a judge never sees which method wrote which answer
                    )
                    s.add(vote)
                    s.flush()
                    vote_id = vote.id
                for p in pairs:
                    s.add(
                        Judgement(
                            comparison_id=comparison_id,
                            vote_id=vote_id,
                            judge=judge,
                            prompt_version=prompt_version,
                            first_id=p.first_id,
                            second_id=p.second_id,
                            verdict=p.verdict,
                            status=p.status,
                            calls=p.calls,
                            prompt_tokens=p.prompt_tokens,
                            completion_tokens=p.completion_tokens,
                            seconds=p.seconds,
                        )
                    )
                return vote_id
        except IntegrityError:
            return None  # another run judged it first: its verdict stands

    def judgement_frame(
        self, preset: str | None = None, judge: str | None = None, with_calls: bool = False
    ) -> pd.DataFrame:
        """Judgement rows (optionally of one preset or judge), oldest first; `calls` on request."""
        cols = [getattr(Judgement, c) for c in JUDGEMENT_COLUMNS]
        if with_calls:
            cols.append(Judgement.calls)
        q = select(*cols)
        if preset:
            q = q.where(Judgement.comparison_id.in_(select(Comparison.id).where(Comparison.preset == preset)))
        if judge:
            q = q.where(Judgement.judge == judge)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(Judgement.id)).all()
        return pd.DataFrame(rows, columns=JUDGEMENT_COLUMNS + (["calls"] if with_calls else []))

    def judges(self, preset: str | None = None) -> list[str]:
        """Voter ids of the judges that voted (on this preset's comparisons), sorted."""
        q = select(Vote.voter_id).where(Vote.voter_id.startswith(JUDGE_PREFIX, autoescape=True)).distinct()
        if preset:
            q = q.where(Vote.comparison_id.in_(select(Comparison.id).where(Comparison.preset == preset)))
        with self.engine.connect() as conn:
            return sorted(v for (v,) in conn.execute(q).all())


def _aware(when: datetime) -> datetime:
    """A timestamp as UTC-aware (the store writes UTC; SQLite reads it back naive)."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)
