"""How sampled token ids become a stream's text, for every local sampler alike (so they agree exactly).

An answer that is still blank may not end (its end-of-answer is masked), a stop string met before
any text restarts the attempt with fresh noise (at most BLANK_RETRIES times, then it stays text), and
a stop string after some text cuts the text just before it and counts as an end by EOS.
"""

from __future__ import annotations

from typing import Literal

import torch

from ..backends.roles import Role
from ..contracts import Stream
from ..contracts.stops import BLANK_RETRIES, blank_stop, find_stop
from .token_choice import mask_tokens

End = Literal["eos", "restart", "stop"]


class StreamText:
    """The strong role's text rules over token ids."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.stops = tuple(role.spec.stop)
        self.longest = max(map(len, self.stops), default=0)

    def finish_chunk(self, parent: Stream, new_ids: list[int], hit_eos: bool, budget: int) -> Stream:
        """Turn sampled ids (ending with the EOS token when hit_eos) into a child stream, cutting at
        the first stop string. The EOS token counts as sampled but is not part of the text."""
        n_new = len(new_ids)
        if hit_eos:
            new_ids = new_ids[:-1]
        ids = parent.token_ids + tuple(new_ids)
        text = self.role.decode(list(ids))
        stop_at = find_stop(text, self.stops, len(parent.text) - self.longest)
        if stop_at is not None:
            text, hit_eos = text[:stop_at], True
        return parent.extend(text, ids, n_new, hit_eos, budget)

    def allowed(self, logits: torch.Tensor, parent: Stream, new_ids: list[int]) -> torch.Tensor:
        """One stream's logits (1 x vocab) with what it may not draw now masked: never-tokens always,
        the end of the answer while it is still blank."""
        logits = mask_tokens(logits, [0], self.role.never_ids)
        if self.blank(parent, new_ids):
            logits = mask_tokens(logits, [0], self.role.stop_ids)
        return logits

    def end(self, parent: Stream, new_ids: list[int], attempt: int) -> End | None:
        """How the chunk ends after its last drawn token: EOS, a restart (a stop string before any
        text), a stop string, or not yet."""
        if new_ids[-1] in self.role.stop_ids:
            return "eos"
        if self.restarts(parent, new_ids, attempt):
            return "restart"
        if self.stopped(parent, new_ids):
            return "stop"
        return None

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
