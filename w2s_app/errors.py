"""Errors any layer may raise whose message is safe to show to a user."""

from __future__ import annotations


class RequestError(ValueError):
    """A comparison request is invalid; the message is safe to show to a user."""


class RateLimited(ValueError):
    """Too many requests from one voter or address; the message says when to try again (`retry_after`, s)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
