"""The Store: one object over the database, assembled from one class per job.

Comparisons and their answers (`comparisons.py`), votes and their rules (`vote_records.py`), reads for the
leaderboard (`reads.py`), exports and history (`exports.py`), automatic judges (`judgements.py`);
here the engine, the sessions and the migrations.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from .comparisons import RUNNER_ID, ComparisonRecords
from .exports import ExportRecords, hash_voter
from .judgements import JudgeRecords
from .reads import BoardReads
from .rewards import RewardRecords
from .vote_records import SPECIAL_CHOICES, VoteError, VoteRecords

if TYPE_CHECKING:
    from ..config import Settings

MIGRATIONS = Path(__file__).with_name("migrations")
__all__ = ["RUNNER_ID", "SPECIAL_CHOICES", "Store", "VoteError", "hash_voter", "migrate"]


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


class Store(ComparisonRecords, VoteRecords, BoardReads, ExportRecords, JudgeRecords, RewardRecords):
    """Persists comparisons, generations and votes; any SQLAlchemy URL, SQLite by default.

    Life of a comparison: `create_comparison` (status 'running') before the methods run, then
    `finish_comparison` (every answer plus status 'done', one transaction) or `fail_comparison`.
    `record_vote` accepts one vote per voter on a 'done' comparison and raises VoteError otherwise.
    Reading: `get_comparison`, `list_comparisons` (history), `frame` (a whole table),
    `leaderboard_frames` (what leaderboard.build_board reads), `export` (CSV/JSONL/Parquet).
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

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()
