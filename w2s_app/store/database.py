"""The Store: one object that writes comparisons, generations and votes and reads them back."""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import case, create_engine, event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload, sessionmaker

from ..twins import twin_column
from .blindness import seal
from .export import normalize, write_frame
from .judgements import HUMANS, JUDGE_PREFIX, JudgeRecords, is_judge, votes_of_source
from .models import Comparison, Generation, Judgement, Vote

if TYPE_CHECKING:
    from ..config import Settings

MIGRATIONS = Path(__file__).with_name("migrations")
SPECIAL_CHOICES = ("tie", "all_bad")


class VoteError(ValueError):
    """A vote was refused; the message is safe to show to the voter."""


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


MIGRATION_LOCK = 0x77327361  # any constant shared by every process migrating the same PostgreSQL


def migrate(engine: Engine, revision: str = "head", down: bool = False) -> None:
    """Upgrade (or downgrade) the database schema to a revision; safe when processes start together."""
    from alembic import command

    cfg = _alembic_config(engine)
    # Two processes starting on a fresh database would both create the tables and one would fail,
    # so migrations are serialised: a lock file beside a SQLite file, an advisory lock on PostgreSQL.
    with _sqlite_file_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Hold an exclusive lock on <db>.migrate.lock for a SQLite file; nothing for other databases."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    with open(f"{path}.migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL lets readers work while a writer writes; the busy timeout waits out short locks."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def hash_voter(voter_id: str | None, salt: str = "") -> str | None:
    """Voter ids leave the database only hashed (with the deployment's secret salt in the app)."""
    if voter_id is None or (isinstance(voter_id, float) and pd.isna(voter_id)):
        return None
    if is_judge(voter_id):
        return voter_id  # a judge is a model, not a person: its name stays readable
    return hashlib.sha256(f"w2s-voter:{salt}:{voter_id}".encode()).hexdigest()[:16]


# This process, as written into the comparisons it runs: start-up recovery can then tell a
# comparison left `running` by a dead process from one a live replica is still running.
RUNNER_ID = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Store(JudgeRecords):
    """Persists comparisons, generations and votes; any SQLAlchemy URL, SQLite by default.

    Life of a comparison: `create_comparison` (status 'running') before the methods run, then
    `finish_comparison` (every answer plus status 'done', one transaction) or `fail_comparison`.
    `record_vote` accepts one vote per voter on a 'done' comparison and raises VoteError otherwise.
    Reading: `get_comparison`, `list_comparisons` (history), `frame` (a whole table),
    `leaderboard_frames` (what leaderboard.compute_leaderboard needs), `export` (CSV/JSONL/Parquet).
    Automatic judges: see judgements.JudgeRecords (judge_todo, record_judgement, judgement_frame).
    The constructor applies the Alembic migrations (upgrade head) unless `migrate_on_start=False`.
    """

    def __init__(self, url: str, migrate_on_start: bool = True) -> None:
        self.url = url
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate_on_start:
            migrate(self.engine)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """W2S_DB_URL, else SQLite at <data dir>/w2s.sqlite3."""
        url = settings.db_url or f"sqlite:///{Path(settings.data_dir).resolve() / 'w2s.sqlite3'}"
        return cls(url)

    # -- comparisons -------------------------------------------------------------------------

    def create_comparison(
        self,
        prompt: str,
        preset: str,
        settings: dict[str, Any],
        voter_id: str | None,
        models: dict[str, Any],
        client_hash: str | None = None,
    ) -> int:
        """Insert a comparison in status 'running' with a random public id; returns its id."""
        with self.sessions.begin() as s:
            row = Comparison(
                prompt=prompt,
                preset=preset,
                settings=settings,
                models=models,
                voter_id=voter_id,
                status="running",
                public_id=secrets.token_urlsafe(12),
                client_hash=client_hash,
                runner_id=RUNNER_ID,
            )
            s.add(row)
            s.flush()
            return row.id

    def public_id(self, comparison_id: int) -> str:
        """The random id clients see for a comparison."""
        with self.sessions() as s:
            value = s.scalar(select(Comparison.public_id).where(Comparison.id == comparison_id))
        if value is None:
            raise KeyError(f"comparison {comparison_id} does not exist")
        return value

    def finish_comparison(self, comparison_id: int, comp: Any, positions: list[int]) -> list[int]:
        """Write every result (failed ones too) and mark the comparison done, in one transaction."""
        ids: dict[int, int] = {}
        with self.sessions.begin() as s:
            row = s.get(Comparison, comparison_id)
            if row is None:
                raise KeyError(f"comparison {comparison_id} does not exist")
            # Rows go in by display position: ids in method order would tell which column is which.
            order = sorted(range(len(positions)), key=lambda i: positions[i])
            for i in order:
                result, pos = comp.results[i], positions[i]
                gen = Generation(
                    comparison_id=comparison_id,
                    method=result.method,
                    label=result.label,
                    params=dict(result.params),
                    models=dict(getattr(comp, "models", {}) or {}),
                    seed=comp.sampling.seed,
                    text=result.text,
                    score=result.score,
                    eos=result.eos,
                    trace=[step.to_dict() for step in result.trace],
                    strong_tokens=result.counts.strong_tokens,
                    guide_tokens=result.counts.guide_tokens,
                    api_calls=result.counts.api_calls,
                    prompt_tokens=result.counts.prompt_tokens,
                    completion_tokens=result.counts.completion_tokens,
                    seconds=result.seconds,
                    status="done" if result.ok else "failed",
                    error=result.error,
                    position=pos,
                )
                s.add(gen)
                s.flush()
                ids[i] = gen.id
            row.status = "done"
            row.seconds = comp.seconds
            row.finished_at = datetime.now(UTC)
        return [ids[i] for i in range(len(positions))]

    def fail_comparison(self, comparison_id: int, error: str) -> None:
        """Mark a comparison failed (no vote will be accepted on it)."""
        with self.sessions.begin() as s:
            row = s.get(Comparison, comparison_id)
            if row is not None:
                row.status, row.error, row.finished_at = "failed", error, datetime.now(UTC)

    def recover_running(self, older_than_seconds: float) -> int:
        """Mark comparisons left `running` by a dead process `failed`, with the reason; returns how many.

        Dead: written by a process of this host that no longer runs, or older than
        `older_than_seconds` (longer than any live comparison may run, whoever runs it).
        """
        host = RUNNER_ID.split(":", 1)[0]
        cutoff = datetime.now(UTC).timestamp() - older_than_seconds
        count = 0
        with self.sessions.begin() as s:
            for row in s.scalars(select(Comparison).where(Comparison.status == "running")):
                created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
                if _runner_dead(row.runner_id or "", host) or created.timestamp() < cutoff:
                    row.status, row.finished_at = "failed", datetime.now(UTC)
                    row.error = "interrupted: the app stopped while this comparison ran"
                    count += 1
        return count

    def comparison_by_public_id(self, public_id: str) -> dict[str, Any]:
        """A comparison by the id clients see (KeyError when there is none)."""
        with self.sessions() as s:
            cid = s.scalar(select(Comparison.id).where(Comparison.public_id == public_id))
        if cid is None:
            raise KeyError(f"comparison {public_id!r} does not exist")
        return self.get_comparison(cid)

    def get_comparison(self, comparison_id: int) -> dict[str, Any]:
        """A comparison with its generations (by display position) and vote count."""
        with self.sessions() as s:
            row = s.get(Comparison, comparison_id)
            if row is None:
                raise KeyError(f"comparison {comparison_id} does not exist")
            out = _row_dict(row)
            out["generations"] = [_row_dict(g) for g in row.generations]
            out["votes"] = len(row.votes)
            return out

    # -- votes -------------------------------------------------------------------------------

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
                if row.status == "failed":
                    raise VoteError(
                        "this comparison failed (interrupted, or its models did not load); nothing to vote on"
                    )
                if row.status != "done":
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
                    if gens[gen_id].status != "done":
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

    # -- reading -----------------------------------------------------------------------------

    def frame(self, what: str) -> pd.DataFrame:
        """A whole table as a DataFrame: 'comparisons', 'generations', 'votes' or 'judgements'."""
        table = {"comparisons": Comparison, "generations": Generation, "votes": Vote,
                 "judgements": Judgement}.get(what)  # fmt: skip
        if table is None:
            raise ValueError(f"unknown table {what!r}; choose comparisons, generations, votes or judgements")
        with self.sessions() as s:
            rows = [_row_dict(r) for r in s.scalars(select(table).order_by(table.id))]
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

    def export_frame(
        self, what: str, voter_id: str | None = None, salt: str = "", source: str = HUMANS
    ) -> pd.DataFrame:
        """A table as exported: voter ids hashed, UTC timestamps, JSON columns kept as objects.

        With `voter_id`, only that voter's part: their comparisons, the answers of those they voted
        on (nothing that names a column's method before the vote), and their votes. `source` picks
        whose votes a votes export holds: 'humans' (people, the default), 'judge:<model>',
        'humans+judge:<model>' or 'all'. Judgements (a judge's replies) follow the generations' rule.
        """
        df = self.frame(what)
        if what == "votes":
            df = votes_of_source(df, source).reset_index(drop=True)
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
        source: str = HUMANS,
    ) -> Path:
        """Write a table to CSV, JSONL or Parquet; export.read_frame reads it back equal."""
        return write_frame(self.export_frame(what, voter_id, salt, source), what, fmt, Path(path))

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

    def count(self, what: str) -> int:
        """Number of rows in a table."""
        table = {"comparisons": Comparison, "generations": Generation, "votes": Vote,
                 "judgements": Judgement}[what]  # fmt: skip
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(table)) or 0)

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()


def _runner_dead(runner_id: str, host: str) -> bool:
    """Whether the process that wrote runner_id (host:pid:nonce) is gone; unknown hosts count as alive."""
    parts = runner_id.split(":")
    if len(parts) != 3 or parts[0] != host or runner_id == RUNNER_ID or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True  # our pid, another nonce: an earlier process that had our pid (a restarted container)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _row_dict(row: Any) -> dict[str, Any]:
    """Column values of an ORM row."""
    return {c.name: getattr(row, c.key if hasattr(c, "key") else c.name) for c in row.__table__.columns}
