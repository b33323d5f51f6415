"""How sampled token ids become a stream's text, for every local sampler alike (so they agree exactly).

An answer that is still blank may not end (its end-of-answer is masked), a stop string met before
any text restarts the attempt with fresh noise (at most BLANK_RETRIES times, then it stays text), and
a stop string after some text cuts the text just before it and counts as an end by EOS.
"""

from __future__ import annotations

from ..backends.roles import Role
from ..contracts import Stream
from ..contracts.stops import BLANK_RETRIES, blank_stop, find_stop


class StreamText:
    """The strong role's text rules over token ids."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.stops = tuple(role.spec.stop)
        self.longest = max(map(len, self.stops), default=0)

    def finish_chunk(
        self, parent: Stream, new_ids: list[int], hit_eos: bool, budget: int, n_new: int
    ) -> Stream:
        """Turn sampled ids into a child stream, cutting at the first stop string."""
        ids = parent.token_ids + tuple(new_ids)
        text = self.role.decode(list(ids))
        stop_at = find_stop(text, self.stops, len(parent.text) - self.longest)
        if stop_at is not None:
            text, hit_eos = text[:stop_at], True
        return parent.extend(text, ids, n_new, hit_eos, budget)

    def blank(self, parent: Stream, new_ids: list[int]) -> bool:
        """True while the answer has no visible text yet: it may not end there (EOS is masked)."""
        if parent.text.strip():
            return False
        return not self.role.decode(list(parent.token_ids) + new_ids).strip()

    def stopped(self, parent: Stream, new_ids: list[int]) -> bool:
        """True when the text so far contains a stop string (checked per token)."""
        if not self.stops:
            return False
        text = self.role.decode(list(parent.token_ids) + new_ids)
        return find_stop(text, self.stops, len(parent.text) - self.longest) is not None

    def restarts(self, parent: Stream, new_ids: list[int], attempt: int) -> bool:
        """True when this attempt met a stop string before any text: sample the chunk afresh."""
        if attempt >= BLANK_RETRIES or not self.stops or parent.text.strip():
            return False
        return blank_stop(self.role.decode(list(parent.token_ids) + new_ids), self.stops)
