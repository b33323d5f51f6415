"""The judge as the History tab runs it (admin key): one call, a message back, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..backends.api_http import ApiError
from .ask import JudgeAsk, prepare

log = logging.getLogger(__name__)


def judge_now(
    store: Any,
    settings: Any,
    preset: str,
    base_url: str,
    model: str,
    limit: Any = None,
    since: str | None = None,
    concurrency: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
) -> str:
    """Judge a preset's new comparisons and return the run's summary, or one line saying what is wrong.

    The caller checks the admin key first and marks the leaderboard stale afterwards.
    """
    ask = JudgeAsk(preset, base_url, model, limit, since, concurrency)
    try:
        run = prepare(settings, ask, flag="")
    except ValueError as exc:  # bad input, a judge that cannot start, an unknown preset
        return f"error: {exc}"
    try:
        return run.run(store, on_progress=on_progress).summary()
    except ApiError as exc:  # the run itself counts server failures; this is a failure outside it
        log.warning("judge run failed: %s", exc)
        return f"error: {exc}"
