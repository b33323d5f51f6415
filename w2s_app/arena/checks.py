"""Checks of client values shared by the core's actions: each refusal is an ArenaError naming the value."""

from __future__ import annotations

import math
from typing import Any

from ..wiring import Services
from .errors import ArenaError


def short(value: Any) -> str:
    """A value for an error message: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_preset(services: Services, preset: Any) -> str:
    """'' (all presets) or a known preset name, else ArenaError."""
    if preset is None or preset == "":
        return ""
    if not isinstance(preset, str) or preset not in services.settings.presets():
        known = ", ".join(sorted(services.settings.presets()))
        raise ArenaError(f"unknown preset {short(preset)}; known presets: {known} (or '' for all)")
    return preset


def number_arg(value: Any, name: str, lo: float, hi: float) -> float:
    """A finite number within bounds, else ArenaError."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ArenaError(f"{name} must be a number from {lo:g} to {hi:g}, got {short(value)}")
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:
        raise ArenaError(f"{name} must be a number from {lo:g} to {hi:g}, got {short(value)}") from exc
    if not math.isfinite(number) or not lo <= number <= hi:
        raise ArenaError(f"{name} must be a number from {lo:g} to {hi:g}, got {short(value)}")
    return number
