"""How the batched sampler's loop runs the strong model: the `Decoder` a model backend implements.

`engines.torch_decoder.TorchDecoder` (transformers, packed KV caches) and
`engines.llamacpp_decoder.LlamaCppDecoder` (llama.cpp, KV sequences) implement it; the loop in
`engines.batched_sampler` owns what sampling means.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

import torch

from .states import StrongState


class Decoder(Protocol):
    """How the strong model runs a batch of rows, one per live stream (transformers or llama.cpp)."""

    def lock(self) -> AbstractContextManager[Any]:
        """Held while the loop uses the model (a llama.cpp context serves one caller at a time)."""
        ...

    def prefill(self, ids: list[int]) -> StrongState:
        """A fresh state: ids[:-1] run into a cache, ids[-1] left pending."""
        ...

    def release(self, state: StrongState) -> None:
        """A stored state nobody will extend: its memory can go."""
        ...

    def add_rows(self, states: list[StrongState]) -> None:
        """New rows at the end of the batch, each continuing from (a copy of) a state."""
        ...

    def forward(self) -> torch.Tensor:
        """Feed every row's pending token; the next-token logits, one row per stream (B, V)."""
        ...

    def advance(self, toks: list[int]) -> None:
        """The sampled tokens become the rows' pending tokens, one position on."""
        ...

    def keep_row(self, b: int, tok: int) -> StrongState:
        """Row b's cache as a stored state with `tok` pending (it stays when the row leaves)."""
        ...

    def remove_rows(self, gone: set[int]) -> None:
        """Take these batch rows out (finished, or their request was abandoned)."""
        ...

    def reset(self) -> None:
        """Drop the whole batch."""
        ...
