"""Per-stream key/value caches and packing them into one ragged, left-padded batch.

A stream's cache is a tuple of per-layer (keys, values), each shaped (heads, length, head_dim),
holding only real positions. To run many streams in one forward pass we left-pad their caches to
one length and mark the padding in the attention mask; positions are passed explicitly, so the
padding never shifts them. After the pass, a row's cache is read back by selecting its unmasked
positions, which also drops any padding inside the new block.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

KV = tuple[tuple[torch.Tensor, torch.Tensor], ...]


def kv_length(kv: KV) -> int:
    """Number of cached positions."""
    return int(kv[0][0].shape[-2]) if kv else 0


def crop(kv: KV, length: int) -> KV:
    """The first `length` positions (views, no copy)."""
    return tuple((k[:, :length], v[:, :length]) for k, v in kv)


def empty_cache() -> DynamicCache:
    """A cache with plain full-attention layers only.

    Passing our own cache stops a model from building one from its config: sliding-window layers
    would drop old positions and give each layer a different length, which the per-row read-back
    cannot follow. The model still applies its sliding-window mask over the full cache.
    """
    return DynamicCache()


def pack(rows: list[KV]) -> tuple[DynamicCache, torch.Tensor]:
    """One DynamicCache over all rows, left-padded to the longest, and its (B, length) padding mask."""
    lengths = [kv_length(kv) for kv in rows]
    width = max(lengths, default=0)
    ref = next((kv for kv in rows if kv), None)
    if ref is None or width == 0:
        return empty_cache(), torch.zeros((len(rows), 0), dtype=torch.long)
    device = ref[0][0].device
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for i, n in enumerate(lengths):
        mask[i, width - n :] = 1
    layers = []
    for layer, (k0, v0) in enumerate(ref):
        keys = k0.new_zeros((len(rows), k0.shape[0], width, k0.shape[-1]))
        values = v0.new_zeros((len(rows), v0.shape[0], width, v0.shape[-1]))
        for i, kv in enumerate(rows):
            if lengths[i]:
                keys[i, :, width - lengths[i] :] = kv[layer][0]
                values[i, :, width - lengths[i] :] = kv[layer][1]
        layers.append((keys, values))
    return DynamicCache(ddp_cache_data=layers), mask


def unpack(cache: Any, row: int, mask_row: torch.Tensor) -> KV:
    """Row `row` of a batched cache, keeping only the positions its mask marks as real."""
    keep = mask_row.bool()
    return tuple(
        (layer.keys[row][:, keep].clone(), layer.values[row][:, keep].clone()) for layer in cache.layers
    )


def select_rows(cache: Any, rows: list[int]) -> None:
    """Keep only the given batch rows of a cache, in that order (finished streams leave the batch)."""
    index = torch.tensor(rows, dtype=torch.long, device=cache.layers[0].keys.device)
    cache.batch_select_indices(index)
