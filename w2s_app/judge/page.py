"""The judge as the History tab runs it (admin key): one call, a message back, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..backends.openai_api import ApiError
from .client import JudgeSetupError, make_judge
from .command import JudgeInputError, parse_since
from .run import run_judge

log = logging.getLogger(__name__)


def judge_now(
    store: Any,
    settings: Any,
    preset: str,
    base_url: str,
    model: str,
    limit: int | None = None,
    since: str | None = None,
    concurrency: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
) -> str:
    """Judge a preset's new comparisons and return the run's summary, or one line saying what is wrong.

    The caller checks the admin key first and marks the leaderboard stale afterwards.
    """
    try:
        if limit is not None and int(limit) < 1:
            raise JudgeInputError("limit must be at least 1")
        chosen = settings.preset(preset)
        when = parse_since(since)
        judge = make_judge(base_url, model)
    except (JudgeInputError, JudgeSetupError, ValueError) as exc:
        return f"error: {exc}"
    try:
        report = run_judge(
            store,
            judge,
            preset=chosen.name,
            purposes={chosen.name: chosen.purpose},
            limit=int(limit) if limit else None,
            since=when,
            concurrency=concurrency,
            progress=False,
            on_progress=on_progress,
        )
    except ApiError as exc:  # the run itself counts server failures; this is a failure outside it
        log.warning("judge run failed: %s", exc)
        return f"error: {exc}"
    finally:
        judge.close()
    return report.summary()
