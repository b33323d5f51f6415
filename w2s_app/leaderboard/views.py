"""The leaderboard's view settings, declared once: name, type, default, label, help and how a value is read.

The CLI, the Leaderboard tab, the Gradio `/leaderboard` endpoint and `GET /w2s/leaderboard.json`
read a view through `parse_view`, so a bad value gets the same message everywhere, and every
spelling of one view (`0`, `0.0`, `0.000`; `1`, `true`, `yes`) becomes the same canonical
`BoardView`: one cache entry, one fit, one pacing key. `min_vote_seconds` snaps to a small grid, so
a poller that sends a new value with every request cannot make the server fit a new board each time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..options import short_value
from .cache import BoardView
from .vote_sources import HUMANS, parse_source

MAX_VOTE_SECONDS = 3600
# The values min_vote_seconds takes: a given value becomes the nearest (ties: the lower).
VOTE_SECONDS_GRID = (0, 1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


class ViewError(ValueError):
    """A view value that cannot be read; the message names the setting and what it takes."""


def read_flag(name: str, value: Any) -> bool:
    """A switch: true/false, or 1/0, yes/no, on/off as text (query strings)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    raise ViewError(f"{name} must be true or false, got {short_value(value)}")


def read_vote_seconds(name: str, value: Any) -> float:
    """Seconds from 0 to 3600, snapped to the nearest value of VOTE_SECONDS_GRID."""
    if value is None or value == "":
        return 0.0
    message = f"{name} must be a number from 0 to {MAX_VOTE_SECONDS}, got {short_value(value)}"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ViewError(message)
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:
        raise ViewError(message) from exc
    if not math.isfinite(number) or not 0 <= number <= MAX_VOTE_SECONDS:
        raise ViewError(message)
    return float(min(VOTE_SECONDS_GRID, key=lambda g: (abs(g - number), g)))


def read_source(name: str, value: Any) -> str:
    """'humans', 'judge:<model>' or 'humans+judge:<model>' (no database call)."""
    if value is None or value == "":
        return HUMANS
    if not isinstance(value, str):
        raise ViewError(f"{name} must be text, got {short_value(value)}")
    try:
        parse_source(value.strip())
    except ValueError as exc:
        raise ViewError(str(exc)) from exc
    return value.strip()


@dataclass(frozen=True)
class ViewField:
    """One view setting as every door shows and reads it."""

    name: str
    default: Any
    label: str
    help: str
    read: Callable[[str, Any], Any]

    @property
    def flag(self) -> str:
        """The CLI's spelling."""
        return "--" + self.name.replace("_", "-")


FIELDS = (
    ViewField("preset", "", "Preset (empty: all)", "only comparisons of this preset", lambda n, v: v),
    ViewField("style_control", False, "Style control (net of answer length and markdown)",
              "strengths net of answer length and markdown", read_flag),
    ViewField("min_vote_seconds", 0.0, "Drop votes faster than (s)",
              f"drop votes cast faster than this many seconds (0-{MAX_VOTE_SECONDS}, "
              "read as the nearest of " + ", ".join(map(str, VOTE_SECONDS_GRID)) + ")", read_vote_seconds),
    ViewField("drop_one_position", False, "Drop voters who always pick one position",
              "drop voters whose picks are all one position", read_flag),
    ViewField("source", HUMANS, "Whose votes",
              "whose votes: humans (the default), judge:<model> or humans+judge:<model>", read_source),
    ViewField("drop_followers", False, "Drop voters who follow one method (far above chance, fast)",
              "drop voters whose picks follow one method far above chance, voting fast", read_flag),
)  # fmt: skip
BY_NAME = {f.name: f for f in FIELDS}
ORDER = tuple(f.name for f in FIELDS)  # the positional order of the Gradio endpoint and handlers


def parse_view(values: Mapping[str, Any], check_preset: Callable[[Any], str]) -> BoardView:
    """The canonical view of given values (missing ones: defaults); ViewError names a bad one.

    `check_preset` turns a preset value into '' or a known preset's name (its own error otherwise).
    """
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise ViewError(f"unknown leaderboard setting {unknown[0]!r}; known: {', '.join(ORDER)}")
    got = {f.name: f.read(f.name, values.get(f.name, f.default)) for f in FIELDS}
    return BoardView(
        preset=check_preset(got["preset"]),
        min_vote_seconds=got["min_vote_seconds"],
        drop_one_position=got["drop_one_position"],
        style_control=got["style_control"],
        vote_source=got["source"],
        drop_followers=got["drop_followers"],
    )
