"""Stop strings over text that only grows: where an answer ends, and what of it can no longer change.

A stop string ends an answer only after some visible text. One found while the answer is still
blank (after optional whitespace: a base model that writes its own "\nQuestion: ..." line first)
ends that attempt instead: it is retried with fresh noise, as a blank answer is, at most
BLANK_RETRIES times; after that the stop string stays text, as it always did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

BLANK_RETRIES = 2  # fresh attempts of an answer that ended (or stopped) before any visible text


def retry_slot(slot: int, attempt: int) -> int:
    """The noise slot of an answer's attempt: fresh draws, still keyed (reproducible)."""
    return slot + (attempt << 20)


def retry_blank(attempt: Callable[[int], T], blank: Callable[[T], bool]) -> T:
    """attempt(0)'s result, or while `blank` says a result came out blank, the next attempt's (at most
    BLANK_RETRIES more); the last attempt's result stands whatever it is.

    Every engine retries an answer this way; an attempt draws its noise at retry_slot(slot, n).
    """
    result = attempt(0)
    for n in range(1, 1 + BLANK_RETRIES):
        if not blank(result):
            break
        result = attempt(n)
    return result


def blank_stop(text: str, stops: tuple[str, ...]) -> bool:
    """True when a stop string begins while the text before it is blank (the attempt is spent)."""
    for stop in stops:
        i = text.find(stop) if stop else -1
        if i >= 0 and not text[:i].strip():
            return True
    return False


def settled_text(text: str, stops: tuple[str, ...] = ()) -> str:
    """The part of a growing answer that later tokens cannot change.

    Held back: a trailing replacement character (a multi-byte character still being written) and
    any suffix that could be the start of a stop string (the answer would be cut before it).
    """
    text = text.rstrip("\ufffd")
    return text[: len(text) - stop_start_length(text, stops)]


def stop_start_length(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest suffix of text that is a proper beginning of some stop string."""
    hold = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:n]):
                hold = max(hold, n)
                break
    return hold


def find_stop(text: str, stops: tuple[str, ...], start: int = 0) -> int | None:
    """Index of the earliest stop string that begins at or after `start`, or None.

    A stop string ends an answer only after some non-blank text: a model that opens with blank
    lines (or with the stop string itself) would otherwise give an empty answer counted as finished.
    Before that, the stream samples on.
    """
    hits = []
    for stop in stops:
        if not stop:
            continue
        i = text.find(stop, max(0, start))
        while i >= 0 and not text[:i].strip():
            i = text.find(stop, i + 1)
        if i >= 0:
            hits.append(i)
    return min(hits) if hits else None
