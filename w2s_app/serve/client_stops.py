"""Client stop strings over text that only grows: what may be sent now, and where the answer ends."""

from __future__ import annotations

from ..contracts.stops import stop_start_length


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """The text before the first stop string, and whether one was found."""
    first = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:first], True) if first >= 0 else (text, False)


def safe_prefix(text: str, stops: tuple[str, ...]) -> str:
    """The part of a growing text that no later stop string can cut: a stop's beginning is held back.

    A stop found in the text ends it, unless a longer stop that begins even earlier is still being
    written (stops "b" and "aba" over "aab": the answer may yet end after the first "a").
    """
    cut, _ = cut_at_stop(text, stops)
    return text[: min(len(cut), len(text) - stop_start_length(text, stops))]


class StopStream:
    """Turns successive settled texts into deltas that are never withdrawn."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.sent = ""

    def feed(self, settled: str) -> str:
        """The new text to send for a longer settled text ('' when nothing new is safe)."""
        safe = safe_prefix(settled, self.stops)
        if len(safe) <= len(self.sent) or not safe.startswith(self.sent):
            return ""
        delta, self.sent = safe[len(self.sent) :], safe
        return delta

    def finish(self, final: str) -> str:
        """The rest of the final (cut) answer."""
        cut, _ = cut_at_stop(final, self.stops)
        delta = cut[len(self.sent) :] if cut.startswith(self.sent) else ""
        self.sent = cut
        return delta
