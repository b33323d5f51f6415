"""Recent finished comparisons' durations: what the page's wait estimate is made of."""

from __future__ import annotations

from statistics import median
from typing import Any

from sqlalchemy import select

from .models import Comparison


def recent_seconds(store: Any, preset: str, last: int = 20) -> list[float]:
    """Seconds of the last `last` finished comparisons of a preset, newest first."""
    query = (
        select(Comparison.seconds)
        .where(Comparison.preset == preset, Comparison.status == "done", Comparison.seconds.is_not(None))
        .order_by(Comparison.id.desc())
        .limit(last)
    )
    with store.engine.connect() as conn:
        return [float(s) for s in conn.execute(query).scalars()]


def wait_estimate(store: Any, preset: str, last: int = 20) -> tuple[float, int] | None:
    """(median seconds, how many comparisons it is the median of), or None before the first one."""
    seconds = recent_seconds(store, preset, last)
    return (median(seconds), len(seconds)) if seconds else None
