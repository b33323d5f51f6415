"""The bad-input error every layer may raise: its message is safe to show to a user."""

from __future__ import annotations


class RequestError(ValueError):
    """A comparison request is invalid; the message is safe to show to a user."""
