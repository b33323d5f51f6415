"""Reading the store for the leaderboard and counts: whole tables, the board's three frames, the vote version."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import case, func, select

from ..twins import twin_column
from .comparisons import row_dict
from .file_formats import TABLES
from .models import Comparison, Generation, Vote


class BoardReads:
    """Store methods that read tables for the leaderboard (mixed into Store: it gives engine and sessions)."""

    engine: Any
    sessions: Any

    def frame(self, what: str) -> pd.DataFrame:
        """A whole table as a DataFrame, by its export name (file_formats.TABLES)."""
        table = TABLES.get(what)
        if table is None:
            raise ValueError(f"unknown table {what!r}; choose {', '.join(TABLES)}")
        with self.sessions() as s:
            order = list(table.__table__.primary_key.columns)
            rows = [row_dict(r) for r in s.scalars(select(table).order_by(*order))]
        columns = [c.name for c in table.__table__.columns]
        return pd.DataFrame(rows, columns=columns)

    def leaderboard_frames(
        self, preset: str | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(votes, generations, comparisons) with only the columns the leaderboard reads.

        Texts and traces stay in the database: the leaderboard is recomputed on every page view.
        Only the texts of comparisons with a vote for one answer are read, to find twins (`twin_of`).
        """
        comps = select(Comparison.id, Comparison.preset)
        voted = select(Vote.comparison_id).where(Vote.choice == "generation")
        voted_text = case((Generation.comparison_id.in_(voted), Generation.text), else_=None).label("text")
        gens = select(
            Generation.id,
            Generation.comparison_id,
            Generation.label,
            Generation.status,
            Generation.position,
            Generation.strong_tokens,
            Generation.guide_tokens,
            Generation.seconds,
            voted_text,
        )
        votes = select(
            Vote.id, Vote.comparison_id, Vote.choice, Vote.generation_id, Vote.blind, Vote.voter_id,
            Vote.seconds_shown, Vote.client_hash,
        )  # fmt: skip
        if preset:
            in_preset = select(Comparison.id).where(Comparison.preset == preset)
            comps = comps.where(Comparison.preset == preset)
            gens = gens.where(Generation.comparison_id.in_(in_preset))
            votes = votes.where(Vote.comparison_id.in_(in_preset))
        with self.engine.connect() as conn:
            frames = [
                pd.DataFrame(
                    conn.execute(q.order_by(q.selected_columns[0])).all(),
                    columns=list(q.selected_columns.keys()),
                )
                for q in (votes, gens, comps)
            ]
        frames[1]["twin_of"] = pd.Series(twin_column(frames[1]), index=frames[1].index, dtype="Int64")
        return frames[0], frames[1].drop(columns="text"), frames[2]

    def generation_texts(self, ids: list[int]) -> dict[int, str]:
        """Answer texts by generation id (style features for the style-controlled leaderboard)."""
        out: dict[int, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = [int(i) for i in ids[start : start + 500]]
                q = select(Generation.id, Generation.text).where(Generation.id.in_(chunk))
                out.update({gid: txt for gid, txt in conn.execute(q).all()})
        return out

    def vote_version(self) -> tuple[int, int]:
        """(highest vote id, number of votes): changes whenever a vote lands, on any replica."""
        with self.engine.connect() as conn:
            top, n = conn.execute(select(func.max(Vote.id), func.count(Vote.id))).one()
        return int(top or 0), int(n or 0)

    def count(self, what: str) -> int:
        """Number of rows in a table."""
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(TABLES[what])) or 0)
