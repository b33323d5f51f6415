"""The refusal a rate limit gives (limits.Limits counts the requests, in the database)."""

from __future__ import annotations


class RateLimited(ValueError):
    """Too many requests from one voter; the message says when to try again (`retry_after`, seconds)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
