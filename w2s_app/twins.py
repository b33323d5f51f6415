"""Twins: answers of one comparison that are the same text once whitespace is normalised.

A rater cannot prefer one of two identical answers, so a vote for one twin counts for its whole
group (see leaderboard.outcomes_from_votes), and the page says which answers are twins before
the vote. Only successful answers can be twins; the caller passes just those.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)


def normalize(text: str | None) -> str:
    """The text that decides twinship: stripped, every run of whitespace one space."""
    return " ".join((text or "").split())


def twin_groups(answers: Iterable[tuple[K, str | None]]) -> list[list[K]]:
    """Groups (two or more keys, in input order) of answers with the same normalised text.

    Groups come in the order of their first member, so the result does not depend on dict order.
    """
    by_text: dict[str, list[K]] = {}
    for key, text in answers:
        by_text.setdefault(normalize(text), []).append(key)
    return [keys for keys in by_text.values() if len(keys) > 1]


def twin_of(answers: Iterable[tuple[int, str | None]]) -> dict[int, int]:
    """Generation id -> the lowest generation id of its twin group, for twins only."""
    out: dict[int, int] = {}
    for group in twin_groups(answers):
        first = min(group)
        out.update(dict.fromkeys(group, first))
    return out


def twin_column(generations: Any) -> list[int | None]:
    """`twin_of` for each row of a generations frame (id, comparison_id, text, status); None if no twin.

    A row whose text is None (not loaded) is nobody's twin.
    """
    done = generations[(generations["status"] == "done") & generations["text"].notna()]
    firsts: dict[int, int] = {}
    for _, gens in done.groupby("comparison_id"):
        firsts.update(twin_of(zip(gens["id"].astype(int), gens["text"], strict=True)))
    return [firsts.get(int(i)) for i in generations["id"]]


def join_letters(letters: list[str]) -> str:
    """'B', 'B and C', 'A, B and C'."""
    return letters[0] if len(letters) == 1 else f"{', '.join(letters[:-1])} and {letters[-1]}"


def twin_message(groups: list[list[str]]) -> str:
    """What the page says before the vote, e.g. 'B and C wrote the same answer'; '' without twins."""
    if not groups:
        return ""
    said = "; ".join(f"{join_letters(sorted(g))} wrote the same answer" for g in groups)
    return f"{said} (a vote for one counts for each of them)."
