"""Votes and their rules: one per voter on a `done` comparison, not too fast, a choice of its answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from .judgements import JUDGE_PREFIX, is_judge
from .models import Comparison, Status, Vote

SPECIAL_CHOICES = ("tie", "all_bad")


class VoteError(ValueError):
    """A vote was refused; the message is safe to show to the voter."""


class VoteRecords:
    """Store method for people's votes (mixed into Store: it gives sessions)."""

    sessions: Any

    def record_vote(
        self,
        comparison_id: int,
        voter_id: str,
        choice: int | str,
        seconds_to_vote: float | None = None,
        blind: bool = True,
        min_seconds: float = 0.0,
        token_id: str | None = None,
        client_hash: str | None = None,
    ) -> int:
        """Store one vote: a generation id of this comparison, 'tie' or 'all_bad'.

        Votes cast less than `min_seconds` after the answers were stored are refused: nobody reads
        three answers that fast, bots do.
        """
        if not voter_id or not str(voter_id).strip():
            raise VoteError("a vote needs a voter id")
        if is_judge(str(voter_id)):
            # Judge votes come only through record_judgement, so the human board can trust the prefix.
            raise VoteError(f"voter ids starting with {JUDGE_PREFIX!r} are reserved for automatic judges")
        try:
            comparison_id = int(comparison_id)
        except (TypeError, ValueError) as exc:
            raise VoteError(f"comparison {comparison_id!r} does not exist") from exc
        try:
            with self.sessions.begin() as s:
                row = s.get(Comparison, comparison_id)
                if row is None:
                    raise VoteError(f"comparison {comparison_id} does not exist")
                if row.status == Status.FAILED:
                    raise VoteError(
                        "this comparison failed (interrupted, or its models did not load); nothing to vote on"
                    )
                if row.status != Status.DONE:
                    raise VoteError("this comparison has not finished; vote when every answer is done")
                waited = None
                if row.finished_at is not None:
                    finished = row.finished_at
                    if finished.tzinfo is None:  # SQLite drops the zone; we always store UTC
                        finished = finished.replace(tzinfo=UTC)
                    waited = (datetime.now(UTC) - finished).total_seconds()
                    if min_seconds and waited < min_seconds:
                        raise VoteError(
                            f"too fast: read the answers first (votes open {min_seconds:g} s after they appear)"
                        )
                gen_id = None
                if isinstance(choice, str) and choice in SPECIAL_CHOICES:
                    kind = choice
                else:
                    try:
                        gen_id = int(choice)
                    except (TypeError, ValueError) as exc:
                        raise VoteError(
                            f"unknown choice {choice!r}: a generation id, 'tie' or 'all_bad'"
                        ) from exc
                    gens = {g.id: g for g in row.generations}
                    if gen_id not in gens:
                        raise VoteError(f"generation {gen_id} is not part of comparison {comparison_id}")
                    if gens[gen_id].status != Status.DONE:
                        # A failed method has no answer to prefer; 'all_bad' or 'tie' still work.
                        raise VoteError("that answer failed; vote for another one, tie or all bad")
                    kind = "generation"
                vote = Vote(
                    comparison_id=row.id,
                    voter_id=str(voter_id),
                    choice=kind,
                    generation_id=gen_id,
                    blind=blind,
                    seconds_to_vote=seconds_to_vote,
                    seconds_shown=waited,
                    token_id=token_id,
                    client_hash=client_hash,
                )
                s.add(vote)
                s.flush()
                return vote.id
        except IntegrityError as exc:
            # The unique constraint decides races between two writers: exactly one vote lands.
            raise VoteError("you already voted on this comparison") from exc
