"""Stop strings over text that only grows: where an answer ends, and what of it can no longer change."""

from __future__ import annotations


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
