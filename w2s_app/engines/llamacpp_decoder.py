"""The strong model in llama.cpp as a `Decoder`: every stream is a KV sequence of one context.

A child copies its parent's sequence (shared cells, no copy of memory), decodes only its new tokens,
and all live streams decode in one `llama_decode` batch. Sequence ids come from the context, which
several samplers may share (presets on one GGUF), so no sampler can overwrite another's cells.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import torch

from ..backends.llamacpp import LlamaContext
from .states import StrongState


class LlamaCppDecoder:
    """llama.cpp decode calls over the rows of one sampler; the context hands out sequence ids."""

    def __init__(self, lc: LlamaContext) -> None:
        self.lc = lc
        self.seqs: list[int] = []  # each batch row's sequence
        self.pending: list[int] = []
        self.positions: list[int] = []
        self.kept: set[int] = set()  # rows' sequences handed out as stored states (not freed on leaving)

    def lock(self) -> AbstractContextManager[Any]:
        """The context's lock: one caller decodes at a time (the samplers sharing it take turns)."""
        return self.lc.lock

    def prefill(self, ids: list[int]) -> StrongState:
        """Run ids[:-1] into a fresh sequence; ids[-1] is left pending."""
        seq = self.lc.acquire()
        if len(ids) > 1:
            self.lc.decode([(t, i, seq, False) for i, t in enumerate(ids[:-1])])
        return StrongState(kv=seq, pending=ids[-1], length=len(ids) - 1)

    def release(self, state: StrongState) -> None:
        """Free a stored state's sequence."""
        self.lc.free(state.kv)

    def add_rows(self, states: list[StrongState]) -> None:
        """Each new row decodes in its own sequence, a copy of its state's."""
        for state in states:
            seq = self.lc.acquire()
            self.lc.copy(state.kv, seq)
            self.seqs.append(seq)
            self.pending.append(state.pending)
            self.positions.append(state.length)

    def remove_rows(self, gone: set[int]) -> None:
        """Take rows out; a row whose sequence became a stored state keeps it, the others free theirs."""
        for b in sorted(gone):
            seq = self.seqs[b]
            if seq in self.kept:
                self.kept.discard(seq)  # now a stored state's
            else:
                self.lc.free(seq)
        keep = [b for b in range(len(self.seqs)) if b not in gone]
        self.seqs = [self.seqs[b] for b in keep]
        self.pending = [self.pending[b] for b in keep]
        self.positions = [self.positions[b] for b in keep]

    def forward(self) -> torch.Tensor:
        """One llama_decode of every row's pending token; the logits (B, V)."""
        items = [(t, p, s, True) for t, p, s in zip(self.pending, self.positions, self.seqs)]
        return torch.from_numpy(self.lc.decode(items))

    def keep_row(self, b: int, tok: int) -> StrongState:
        """Row b's sequence becomes the child's state (the row leaves the batch without freeing it)."""
        self.kept.add(self.seqs[b])
        return StrongState(kv=self.seqs[b], pending=tok, length=self.positions[b] + 1)

    def advance(self, toks: list[int]) -> None:
        """The sampled tokens become the rows' pending tokens, one position on."""
        self.pending = list(toks)
        self.positions = [p + 1 for p in self.positions]

    def reset(self) -> None:
        """Drop the batch (its sequences are freed)."""
        for seq in self.seqs:
            if seq not in self.kept:
                self.lc.free(seq)
        self.seqs, self.pending, self.positions, self.kept = [], [], [], set()
