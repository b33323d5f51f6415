"""The strong model in transformers as a `Decoder`: rows are packed, left-padded KV caches."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from ..backends.roles import Role
from .kv import empty_cache, pack, select_rows, unpack
from .states import StrongState


@dataclass
class _Batch:
    """The running batch: one cache row per live stream."""

    cache: Any
    mask: torch.Tensor  # (rows, cached length + 1 per step): 0 marks left padding
    pending: torch.Tensor  # (rows, 1): token each row feeds next
    positions: torch.Tensor  # (rows, 1): that token's position


class TorchDecoder:
    """Transformers forward passes over a batch of cached streams (each row's cache is its own)."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self._batch: _Batch | None = None

    def lock(self) -> AbstractContextManager[Any]:
        """Nothing to hold: each sampler owns its batch, and the weights are only read."""
        return nullcontext()

    def prefill(self, ids: list[int]) -> StrongState:
        """Run ids[:-1] from scratch; ids[-1] is left pending."""
        cache = empty_cache()
        if len(ids) > 1:
            x = torch.tensor([ids[:-1]], device=self.role.loaded.device)
            self.role.model(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=1)
            kv = unpack(cache, 0, torch.ones(len(ids) - 1, dtype=torch.long))
        else:
            kv = ()
        return StrongState(kv=kv, pending=ids[-1], length=len(ids) - 1)

    def release(self, state: StrongState) -> None:
        """A state's memory goes with its tensors."""

    def add_rows(self, states: list[StrongState]) -> None:
        """Re-pack the batch with the new rows appended (once per request, not per token)."""
        dev = self.role.loaded.device
        old = self._batch
        kvs = [unpack(old.cache, b, old.mask[b]) for b in range(len(old.pending))] if old else []
        cache, mask = pack(kvs + [s.kv for s in states])
        pending = torch.tensor([[s.pending] for s in states], device=dev)
        positions = torch.tensor([[s.length] for s in states], device=dev)
        if old:
            pending = torch.cat([old.pending, pending])
            positions = torch.cat([old.positions, positions])
        self._batch = _Batch(cache, mask.to(dev), pending, positions)

    def remove_rows(self, gone: set[int]) -> None:
        """Keep the other rows, in order."""
        batch = self._batch
        if batch is None:
            return
        keep = [b for b in range(len(batch.pending)) if b not in gone]
        if not keep:
            self._batch = None
            return
        select_rows(batch.cache, keep)
        index = torch.tensor(keep, device=batch.mask.device)
        batch.mask, batch.pending, batch.positions = (
            batch.mask[index],
            batch.pending[index],
            batch.positions[index],
        )

    def forward(self) -> torch.Tensor:
        """Feed every row's pending token; the next-token logits, one row per stream (B, V)."""
        batch = self._batch
        assert batch is not None
        ones = torch.ones((len(batch.pending), 1), dtype=batch.mask.dtype, device=batch.mask.device)
        batch.mask = torch.cat([batch.mask, ones], dim=1)
        out = self.role.model(
            input_ids=batch.pending,
            attention_mask=batch.mask,
            position_ids=batch.positions,
            past_key_values=batch.cache,
            use_cache=True,
        )
        return out.logits[:, -1]

    def keep_row(self, b: int, tok: int) -> StrongState:
        """Row b's cache as a stream state, `tok` (just sampled) pending."""
        batch = self._batch
        assert batch is not None
        return StrongState(
            unpack(batch.cache, b, batch.mask[b]), pending=tok, length=int(batch.positions[b, 0]) + 1
        )

    def advance(self, toks: list[int]) -> None:
        """The sampled tokens become the rows' pending tokens, one position on."""
        batch = self._batch
        assert batch is not None
        batch.pending = torch.tensor([[t] for t in toks], device=batch.pending.device)
        batch.positions = batch.positions + 1

    def reset(self) -> None:
        """Drop the batch."""
        self._batch = None
