"""Answer letters (A, B, ...) by display position, and which letters wrote the same text."""

from __future__ import annotations

from typing import Any

from ..twins import twin_groups, twin_message

LETTERS = "ABCDEFGH"  # display positions, as on the page


def twin_letters(stored: dict[str, Any]) -> list[list[str]]:
    """Letter groups of a stored comparison's successful answers that are the same text."""
    done = sorted((g for g in stored["generations"] if g["status"] == "done"), key=lambda g: g["position"])
    return twin_groups((LETTERS[g["position"]], g["text"]) for g in done)


def twin_note(stored: dict[str, Any]) -> str:
    """'B and C wrote the same answer (...)' for the page before the vote; '' without twins."""
    return twin_message(twin_letters(stored))
