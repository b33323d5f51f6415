"""What leaves the store for a person: exports (a voter's part, or everything for the admin) and history."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..twins import twin_column
from .blindness import seal
from .file_formats import normalize, write_frame
from .judgements import HUMANS, is_judge, votes_of_source
from .models import Comparison, Generation, Vote


def hash_voter(voter_id: str | None, salt: str = "") -> str | None:
    """Voter ids leave the database only hashed (with the deployment's secret salt in the app)."""
    if voter_id is None or (isinstance(voter_id, float) and pd.isna(voter_id)):
        return None
    if is_judge(voter_id):
        return voter_id  # a judge is a model, not a person: its name stays readable
    return hashlib.sha256(f"w2s-voter:{salt}:{voter_id}".encode()).hexdigest()[:16]


class ExportRecords:
    """Store methods for exports and history pages (mixed into Store: it gives sessions and frame)."""

    sessions: Any

    frame: Callable[[str], pd.DataFrame]  # BoardReads.frame

    def export_frame(
        self, what: str, voter_id: str | None = None, salt: str = "", vote_source: str = HUMANS
    ) -> pd.DataFrame:
        """A table as exported: voter ids hashed, UTC timestamps, JSON columns kept as objects.

        With `voter_id`, only that voter's part: their comparisons, the answers of those they voted
        on (nothing that names a column's method before the vote), and their votes. `vote_source` picks
        whose votes a votes export holds: 'humans' (people, the default), 'judge:<model>',
        'humans+judge:<model>' or 'all'. Judgements (a judge's replies) follow the generations' rule.
        """
        df = self.frame(what)
        if what == "votes":
            df = votes_of_source(df, vote_source).reset_index(drop=True)
        if voter_id is not None:
            with self.sessions() as s:
                mine = set(s.scalars(select(Comparison.id).where(Comparison.voter_id == voter_id)))
                voted = set(s.scalars(select(Vote.comparison_id).where(Vote.voter_id == voter_id)))
            if what == "comparisons":
                df = df[df["id"].isin(mine)].reset_index(drop=True)
                # The seed rebuilds every column with the public CLI: sealed until this voter votes.
                df["settings"] = [
                    s if cid in voted else seal(s) for cid, s in zip(df["id"], df["settings"], strict=True)
                ]
            elif what in ("generations", "judgements"):
                df = df[df["comparison_id"].isin(mine & voted)]
            elif what == "rewards":  # an answer's reward, like the answer, after the vote
                with self.sessions() as s:
                    seen = set(
                        s.scalars(select(Generation.id).where(Generation.comparison_id.in_(mine & voted)))
                    )
                df = df[df["generation_id"].isin(seen)]
            else:
                df = df[df["voter_id"] == voter_id]
            df = df.reset_index(drop=True)
            for internal in (
                "runner_id",
                "client_hash",
                "token_id",
            ):  # the server's business, not the voter's
                if internal in df:
                    df[internal] = None
        if what == "generations":
            df["twin_of"] = pd.Series(twin_column(df), index=df.index, dtype="float64")
        if "voter_id" in df:
            df["voter_id"] = [hash_voter(v, salt) for v in df["voter_id"]]
        return normalize(df, what)

    def export(
        self,
        what: str,
        fmt: str,
        path: str | Path,
        voter_id: str | None = None,
        salt: str = "",
        vote_source: str = HUMANS,
    ) -> Path:
        """Write a table to CSV, JSONL or Parquet; export.read_frame reads it back equal."""
        return write_frame(self.export_frame(what, voter_id, salt, vote_source), what, fmt, Path(path))

    def list_comparisons(
        self, limit: int = 50, offset: int = 0, preset: str | None = None, voter_id: str | None = None
    ) -> pd.DataFrame:
        """Comparisons newest first, with their methods and votes, for the history table.

        With `voter_id`, only that voter's comparisons. Methods are listed alphabetically (never in
        column order) and winners only once voted, so the table reveals no column's method.
        """
        with self.sessions() as s:
            q = (
                select(Comparison)
                .options(selectinload(Comparison.generations), selectinload(Comparison.votes))
                .order_by(Comparison.id.desc())
                .limit(limit)
                .offset(offset)
            )
            if preset:
                q = q.where(Comparison.preset == preset)
            if voter_id is not None:
                q = q.where(Comparison.voter_id == voter_id)
            rows = []
            for c in s.scalars(q):
                by_id = {g.id: g.label for g in c.generations}
                people = [v for v in c.votes if not is_judge(v.voter_id)]  # a judge's pick is not a person's
                votes = [by_id.get(v.generation_id, v.choice) for v in people]
                rows.append(
                    {
                        "id": c.public_id or str(c.id),
                        "created_at": c.created_at,
                        "preset": c.preset,
                        "prompt": c.prompt,
                        "status": c.status,
                        "methods": ", ".join(sorted(g.label for g in c.generations)),
                        "votes": len(people),
                        "winners": ", ".join(votes),
                    }
                )
        cols = ["id", "created_at", "preset", "prompt", "status", "methods", "votes", "winners"]
        return pd.DataFrame(rows, columns=cols)
