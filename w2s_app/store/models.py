"""SQLAlchemy 2 typed tables: comparison, generation, vote, rate_event, judgement."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Timezone-aware now, stored as UTC."""
    return datetime.now(UTC)


class Status(StrEnum):
    """A comparison's (and an answer's) status, as stored: plain text in the column."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Base(DeclarativeBase):
    """Declarative base for the store's tables."""


class Comparison(Base):
    """One prompt answered by several methods."""

    __tablename__ = "comparison"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt: Mapped[str] = mapped_column(Text)
    preset: Mapped[str] = mapped_column(String(200), index=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    models: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    voter_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default=Status.RUNNING.value)  # a Status
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Public arena (migration 0002): the id shown to clients, who asked (hashed address), which process runs it.
    public_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True, index=True)
    client_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    runner_id: Mapped[str | None] = mapped_column(String(200), nullable=True)

    generations: Mapped[list[Generation]] = relationship(
        back_populates="comparison", order_by="Generation.position", cascade="all, delete-orphan"
    )
    votes: Mapped[list[Vote]] = relationship(back_populates="comparison", cascade="all, delete-orphan")


class Generation(Base):
    """One method's answer to a comparison's prompt, with its search trace and costs."""

    __tablename__ = "generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comparison_id: Mapped[int] = mapped_column(ForeignKey("comparison.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(50))
    label: Mapped[str] = mapped_column(String(200), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    models: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seed: Mapped[int] = mapped_column(BigInteger, default=0)  # up to 2**32 - 1 (migration 0004)
    text: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    eos: Mapped[bool] = mapped_column(Boolean, default=False)
    trace: Mapped[list[Any]] = mapped_column(JSON, default=list)
    strong_tokens: Mapped[int] = mapped_column(Integer, default=0)
    guide_tokens: Mapped[int] = mapped_column(Integer, default=0)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(20), default=Status.DONE.value)  # done | failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    comparison: Mapped[Comparison] = relationship(back_populates="generations")


class Vote(Base):
    """A voter's verdict on a comparison: one generation best, a tie, or all bad."""

    __tablename__ = "vote"
    __table_args__ = (UniqueConstraint("comparison_id", "voter_id", name="uq_vote_comparison_voter"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comparison_id: Mapped[int] = mapped_column(ForeignKey("comparison.id", ondelete="CASCADE"), index=True)
    voter_id: Mapped[str] = mapped_column(String(200))
    choice: Mapped[str] = mapped_column(String(20))  # 'generation' | 'tie' | 'all_bad'
    generation_id: Mapped[int | None] = mapped_column(ForeignKey("generation.id"), nullable=True)
    blind: Mapped[bool] = mapped_column(Boolean, default=True)
    seconds_to_vote: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Vote quality (migration 0002): server-measured seconds from answers shown, token, hashed address.
    seconds_shown: Mapped[float | None] = mapped_column(Float, nullable=True)
    token_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    comparison: Mapped[Comparison] = relationship(back_populates="votes")


class RateEvent(Base):
    """One counted request (a comparison, a vote, a token) of one key, for limits shared by replicas."""

    __tablename__ = "rate_event"
    __table_args__ = (Index("ix_rate_event_key_kind_at", "key", "kind", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[float] = mapped_column(Float)


class Judgement(Base):
    """One pair of answers of a comparison as an automatic judge saw it (migration 0003).

    Each pair is shown in both orders; `first_id` is the answer shown as A in the first order.
    `verdict` is the pair's result (first, second or tie; None when the judge's reply could not be
    read), `calls` holds each order's parsed verdict, reason and raw replies, and the token and
    second columns what both orders cost together. `vote_id` is the judge's vote on the comparison,
    written in the same transaction; rows without a vote record a failure.
    """

    __tablename__ = "judgement"
    __table_args__ = (Index("ix_judgement_judge_comparison", "judge", "comparison_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comparison_id: Mapped[int] = mapped_column(ForeignKey("comparison.id", ondelete="CASCADE"), index=True)
    vote_id: Mapped[int | None] = mapped_column(ForeignKey("vote.id", ondelete="CASCADE"), nullable=True)
    judge: Mapped[str] = mapped_column(String(200))  # the voter id, judge:<model>
    prompt_version: Mapped[str] = mapped_column(String(40))
    first_id: Mapped[int] = mapped_column(ForeignKey("generation.id", ondelete="CASCADE"))
    second_id: Mapped[int] = mapped_column(ForeignKey("generation.id", ondelete="CASCADE"))
    verdict: Mapped[str | None] = mapped_column(String(10), nullable=True)  # first | second | tie
    status: Mapped[str] = mapped_column(String(20))  # judged | identical | copied | unparsable
    calls: Mapped[list[Any]] = mapped_column(JSON, default=list)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnswerReward(Base):
    """A gold reward of one answer (migration 0005): the preset's reward function, scored after the
    comparison is stored, off the request path. Kept apart from votes: it never enters people's board."""

    __tablename__ = "answer_reward"

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generation.id", ondelete="CASCADE"), primary_key=True
    )
    reward: Mapped[str] = mapped_column(String(200), primary_key=True)  # e.g. vader-positive, pkg.mod:fn
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
