"""A judge run as a door asks for it, checked and set up once for the command line and the page.

Both doors name a preset, the judge's server and model, and how much to judge; `prepare` checks
the bounds, finds the preset, reads `since` and connects the judge (one error type per cause, all
ValueErrors with a message safe to show), and `JudgeRun.run` judges and closes the judge.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .client import OpenAIJudge, make_judge
from .run import JudgeReport, run_judge

_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class JudgeInputError(ValueError):
    """Bad input to a judge run (the command prints it as one line and exits 2)."""


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """A UTC time from an ISO date or time (naive = UTC) or an age such as 30m, 12h, 7d."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    age = _AGE.match(text)
    if age:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[age.group(2)]: float(age.group(1))})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise JudgeInputError(
            f"--since must be a date (2026-01-31), a time (2026-01-31T14:00, UTC unless an offset is "
            f"given) or an age (30m, 12h, 7d); got {text[:40]!r}"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class JudgeAsk:
    """What a door asks of the judge: which preset, which server and model, how much, how."""

    preset: str
    base_url: str | None
    model: str
    limit: Any = None  # at most this many comparisons (the page's number may be a float)
    since: str | None = None  # a date, a time or an age (parse_since)
    concurrency: int = 4
    retry_failed: bool = False
    key_env: str = "OPENAI_API_KEY"
    max_tokens: int = 256
    response_format: str = "auto"
    timeout: float = 120.0


@dataclass
class JudgeRun:
    """A judge run ready to go: its bounds checked, its preset found, its judge connected."""

    judge: OpenAIJudge
    preset: str
    purpose: str
    limit: int | None
    since: datetime | None
    concurrency: int
    retry_failed: bool

    def run(
        self, store: Any, progress: bool = False, on_progress: Callable[[int, int], None] | None = None
    ) -> JudgeReport:
        """Judge the preset's new comparisons; the judge's connections are closed afterwards."""
        try:
            return run_judge(
                store,
                self.judge,
                preset=self.preset,
                purposes={self.preset: self.purpose},
                limit=self.limit,
                since=self.since,
                concurrency=self.concurrency,
                retry_failed=self.retry_failed,
                progress=progress,
                on_progress=on_progress,
            )
        finally:
            self.judge.close()


def prepare(settings: Any, ask: JudgeAsk, flag: str = "--") -> JudgeRun:
    """The run `ask` describes, or JudgeInputError, JudgeSetupError or ConfigError saying why not.

    `flag` is how the door names its options in a message: `--limit` on the command line, `limit`
    on the page.
    """
    limit = None if ask.limit is None else int(ask.limit)
    if limit is not None and limit < 1:
        raise JudgeInputError(f"{flag}limit must be at least 1")
    if not 1 <= ask.concurrency <= 64:
        raise JudgeInputError(f"{flag}concurrency must be between 1 and 64")
    if not 16 <= ask.max_tokens <= 8192:
        raise JudgeInputError(f"{flag}max-tokens must be between 16 and 8192")
    if not 1 <= ask.timeout <= 3600:
        raise JudgeInputError(f"{flag}timeout must be between 1 and 3600 seconds")
    since = parse_since(ask.since)
    preset = settings.preset(ask.preset)  # ConfigError names the known presets
    base = ask.base_url or settings.api_base  # OPENAI_BASE_URL when the door names no server
    judge = make_judge(base, ask.model, ask.key_env, ask.max_tokens, ask.response_format, ask.timeout)
    return JudgeRun(judge, preset.name, preset.purpose, limit, since, ask.concurrency, ask.retry_failed)
