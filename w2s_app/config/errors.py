"""The error of a bad setting or preset."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad settings or presets; the message says which and why."""
