"""A comparison's life in the store: created `running`, finished `done` with every answer, or `failed`."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from .models import Comparison, Generation, Status

RUNNER_ID = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class ComparisonRecords:
    """Store methods for comparisons and their answers (mixed into Store: it gives engine and sessions)."""

    engine: Any
    sessions: Any

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
                status=Status.RUNNING,
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
                    status=Status.DONE if result.ok else Status.FAILED,
                    error=result.error,
                    position=pos,
                )
                s.add(gen)
                s.flush()
                ids[i] = gen.id
            row.status = Status.DONE
            row.seconds = comp.seconds
            row.finished_at = datetime.now(UTC)
        return [ids[i] for i in range(len(positions))]

    def fail_comparison(self, comparison_id: int, error: str) -> None:
        """Mark a comparison failed (no vote will be accepted on it)."""
        with self.sessions.begin() as s:
            row = s.get(Comparison, comparison_id)
            if row is not None:
                row.status, row.error, row.finished_at = Status.FAILED, error, datetime.now(UTC)

    def recover_running(self, older_than_seconds: float) -> int:
        """Mark comparisons left `running` by a dead process `failed`, with the reason; returns how many.

        Dead: written by a process of this host that no longer runs, or older than
        `older_than_seconds` (longer than any live comparison may run, whoever runs it).
        """
        host = RUNNER_ID.split(":", 1)[0]
        cutoff = datetime.now(UTC).timestamp() - older_than_seconds
        count = 0
        with self.sessions.begin() as s:
            for row in s.scalars(select(Comparison).where(Comparison.status == Status.RUNNING)):
                created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
                if _runner_dead(row.runner_id or "", host) or created.timestamp() < cutoff:
                    row.status, row.finished_at = Status.FAILED, datetime.now(UTC)
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
            out = row_dict(row)
            out["generations"] = [row_dict(g) for g in row.generations]
            out["votes"] = len(row.votes)
            return out


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


def row_dict(row: Any) -> dict[str, Any]:
    """Column values of an ORM row."""
    return {c.name: getattr(row, c.key if hasattr(c, "key") else c.name) for c in row.__table__.columns}
