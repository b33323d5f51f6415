"""The strong model sampled by llama.cpp in-process: the torch sampler's loop on llama.cpp's decode.

Every stream is a KV sequence of one llama.cpp context. A child copies its parent's sequence
(shared cells, no copy of memory), decodes only its new tokens, and all live streams decode in one
`llama_decode` batch. The draws are the same keyed Gumbel-max draws as the torch samplers (see
`sampling.py`), so the results do not depend on batching; they may differ from the float32 torch
engine's where llama.cpp's quantized arithmetic moves a logit across a near-tie.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..backends.llamacpp import LlamaCppModel
from .engine import Models, SearchError
from .fast import StrongState, TorchSampler, _Row


@dataclass
class _Rows:
    """The running batch: live rows and, per row, its KV sequence, pending token and its position."""

    rows: list[_Row]
    seqs: list[int]
    pending: list[int]
    positions: list[int]
    owned: set[int] = field(default_factory=set)


class LlamaCppSampler(TorchSampler):
    """TorchSampler's flights, states and hooks over a llama.cpp context instead of a torch model."""

    def __init__(self, models: Models, lc: LlamaCppModel) -> None:
        self.lc = lc
        strong = models.strong
        if len(strong.tokenizer) != lc.n_vocab:
            raise SearchError(
                f"llama.cpp's vocabulary ({lc.n_vocab}) differs from the tokenizer's ({len(strong.tokenizer)})"
            )
        self._free = list(range(lc.n_seq_max - 1, -1, -1))
        self._temporary: list[StrongState] = []
        lc.clear()  # the context serves one comparison at a time
        super().__init__(models)
        # A dropped parent's sequence is freed only after its children copied it (end of join).
        self._dropped: list[StrongState] = []
        self.strong_states.on_drop = self._dropped.append

    def join(self, asked):  # type: ignore[no-untyped-def]
        """As TorchSampler's; then free the sequences of states nobody can extend any more."""
        try:
            super().join(asked)
        finally:
            for state in self._dropped + self._temporary:
                self._release(state)
            self._dropped.clear()
            self._temporary.clear()

    # Sequences: a free list; a state or a batch row owns each sequence in use.

    def _take_seq(self) -> int:
        if not self._free:
            raise SearchError(f"more than {self.lc.n_seq_max} streams at once; use a smaller W, K or N")
        return self._free.pop()

    def _release(self, state: StrongState) -> None:
        if isinstance(state.kv, int):
            self.lc.remove(state.kv)
            self._free.append(state.kv)

    def reset(self) -> None:
        """Forget every request being decoded (their sequences are freed)."""
        batch = getattr(self, "_batch", None)
        if batch is not None:
            for seq in batch.seqs:
                self.lc.remove(seq)
                self._free.append(seq)
        super().reset()

    def _prefill_strong(self, ids: list[int]) -> StrongState:
        """Run ids[:-1] into a fresh sequence; ids[-1] is left pending."""
        seq = self._take_seq()
        if len(ids) > 1:
            self.lc.decode([(t, i, seq, False) for i, t in enumerate(ids[:-1])])
        return StrongState(kv=seq, pending=ids[-1], length=len(ids) - 1)

    def _release_root(self, state: StrongState) -> None:
        """A prompt no comparison runs any more: its sequence is freed."""
        self._release(state)

    def _strong_state(self, prompt: str, parent):  # type: ignore[no-untyped-def]
        """As TorchSampler's; a parent rebuilt from the prompt is freed once its rows copied it."""
        state = super()._strong_state(prompt, parent)
        known = state in self._roots.values() or self.strong_states.get(parent.id) is state
        if not known:
            self._temporary.append(state)
        return state

    def _add_rows(self, rows: list[_Row], states: list[StrongState]) -> None:
        """Each new row decodes in its own sequence, a copy of its parent's."""
        old = self._batch
        seqs = []
        for state in states:
            seq = self._take_seq()
            self.lc.copy(state.kv, seq)
            seqs.append(seq)
        if old is None:
            self._batch = _Rows(rows, seqs, [s.pending for s in states], [s.length for s in states])
        else:
            old.rows += rows
            old.seqs += seqs
            old.pending += [s.pending for s in states]
            old.positions += [s.length for s in states]

    def _remove_rows(self, row_ids: set[int]) -> None:
        """Take rows out; a row whose sequence became a stored state keeps it, others free it."""
        batch = self._batch
        if batch is None:
            return
        keep = [b for b, r in enumerate(batch.rows) if id(r) not in row_ids]
        for b, r in enumerate(batch.rows):
            if id(r) not in row_ids:
                continue
            if batch.seqs[b] in batch.owned:
                batch.owned.discard(batch.seqs[b])  # now a stored state's
            else:
                self.lc.remove(batch.seqs[b])
                self._free.append(batch.seqs[b])
        if not keep:
            self._batch = None
            return
        batch.rows = [batch.rows[b] for b in keep]
        batch.seqs = [batch.seqs[b] for b in keep]
        batch.pending = [batch.pending[b] for b in keep]
        batch.positions = [batch.positions[b] for b in keep]

    def _forward(self) -> torch.Tensor:
        """One llama_decode of every row's pending token; the logits (B, V)."""
        b = self._batch
        items = [(t, p, s, True) for t, p, s in zip(b.pending, b.positions, b.seqs)]
        return torch.from_numpy(np.stack(self.lc.decode(items)))

    def _row_state(self, b: int, tok: int) -> StrongState:
        """Row b's sequence becomes the child's state (the row leaves the batch without freeing it)."""
        batch = self._batch
        batch.owned.add(batch.seqs[b])
        return StrongState(kv=batch.seqs[b], pending=tok, length=batch.positions[b] + 1)

    def _advance(self, toks: list[int]) -> None:
        batch = self._batch
        batch.pending = list(toks)
        batch.positions = [p + 1 for p in batch.positions]

    def decode_until_done(self) -> None:
        """As TorchSampler's, holding the context (one sampler decodes at a time)."""
        with self.lc.lock:
            super().decode_until_done()

    def eft(self, prompt, sp, req):  # type: ignore[no-untyped-def]
        """EFT needs the guides' logits beside the strong model's: not with llama.cpp."""
        raise SearchError("eft needs the strong model in transformers; use W2S_ENGINE=fast")
