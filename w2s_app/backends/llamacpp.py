"""GGUF models in llama.cpp, in-process: loaded once per file, with contexts shared by everyone who needs them.

llama.cpp comes from the prebuilt `xllamacpp` wheel through `llama_lib` (nothing to compile). A
context is a KV cache of numbered sequences; the strong model's samplers of every preset on one GGUF
share one context, and guides on one GGUF (with one adapter, or none) share one, so this module
owns each context's sequence ids and lock: no user can overwrite another's cells. Roles read from
a GGUF here need no conversion to transformers: llama.cpp's own vocabulary tokenizes
(`gguf_tokenizer`), and nothing holds torch weights.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ..contracts import SearchError
from . import gguf_vocab, llama_lib
from .gguf_lora import gguf_adapter
from .gguf_tokenizer import GgufTokenizer
from .local import LoadedModel, ModelLoadError

STRONG_CTX = 16384  # KV cells of a strong model's context: every running comparison's streams
GUIDE_CTX = 8192  # KV cells of a guide's context


def available() -> bool:
    """True when the llama.cpp library (the xllamacpp wheel) can be found."""
    return llama_lib.available()


def default_threads(threads: int | None = None) -> int:
    """`threads` (W2S_THREADS, from Settings), else every core: the process's one thread budget."""
    return threads or os.cpu_count() or 1


class LlamaContext:
    """A llama.cpp context and its sequence ids, shared by the samplers or scorers on one model."""

    def __init__(self, ctx: llama_lib.Context) -> None:
        self.ctx = ctx
        self.n_vocab = ctx.n_vocab
        self.n_seq_max = ctx.n_seq_max
        self.n_batch = ctx.n_batch
        # Held for every call (a sampler holds it across its whole decode loop): callers take turns.
        self.lock = threading.RLock()
        self._free = list(range(ctx.n_seq_max - 1, -1, -1))

    def acquire(self) -> int:
        """A sequence id nobody uses (its cells are empty)."""
        with self.lock:
            if not self._free:
                raise SearchError(
                    f"more than {self.n_seq_max} llama.cpp streams at once; use a smaller W, K or N, "
                    "or fewer comparisons at once (W2S_BATCH_ROWS)"
                )
            return self._free.pop()

    def free(self, seq: int) -> None:
        """Forget a sequence's cells and give its id back."""
        with self.lock:
            self.ctx.remove(seq)
            self._free.append(seq)

    def available_ids(self) -> int:
        """How many sequence ids are not in use."""
        return len(self._free)

    def free_ids(self) -> frozenset[int]:
        """The sequence ids not in use."""
        with self.lock:
            return frozenset(self._free)

    def copy(self, src: int, dst: int, end: int = -1) -> None:
        """Sequence dst gets src's positions before `end` (all by default); cells are shared, not copied."""
        with self.lock:
            self.ctx.copy(src, dst, end)

    def decode(self, items: list[tuple[int, int, int, bool]]) -> np.ndarray:
        """Feed (token, position, sequence, wants logits) items; the flagged items' logits (rows, vocab)."""
        with self.lock:
            return self.ctx.decode(items)


_MODELS: dict[Path, llama_lib.Model] = {}
_CONTEXTS: dict[tuple[Path, Path | None, str], LlamaContext] = {}
_LOCK = threading.Lock()


def model(path: Path) -> llama_lib.Model:
    """The process's llama.cpp model of a GGUF file (weights loaded once)."""
    path = Path(path)
    with _LOCK:
        if path not in _MODELS:
            if not llama_lib.available():
                raise ModelLoadError(
                    "llama.cpp is not installed: pip install xllamacpp (a prebuilt wheel), or use W2S_ENGINE=fast"
                )
            _MODELS[path] = llama_lib.Model(path)
        return _MODELS[path]


def context(
    path: Path, purpose: str, adapter: Path | None = None, threads: int | None = None
) -> LlamaContext:
    """The shared context of a GGUF for a purpose ('strong' or 'guide'), with a LoRA adapter or none;
    `threads` (None: every core) applies when the context is first made."""
    path = Path(path)
    key = (path, adapter, purpose)
    loaded = model(path)
    with _LOCK:
        if key not in _CONTEXTS:
            lora = loaded.lora(gguf_adapter(adapter, path)) if adapter is not None else None
            n_ctx = STRONG_CTX if purpose == "strong" else GUIDE_CTX
            _CONTEXTS[key] = LlamaContext(
                llama_lib.Context(loaded, n_ctx=n_ctx, threads=default_threads(threads), adapter=lora)
            )
        return _CONTEXTS[key]


def load_gguf_role_model(source: str, path: Path) -> LoadedModel:
    """A GGUF file as a role's model for llama.cpp: tokenizer from its metadata, no torch weights."""
    import time

    start = time.perf_counter()
    loaded = model(path)
    tokenizer = GgufTokenizer(loaded)
    eos_ids = (int(tokenizer.eos_token_id),) if tokenizer.eos_token_id is not None else ()
    arch = loaded.meta("general.architecture")
    limit = loaded.meta(f"{arch}.context_length") if arch else None
    return LoadedModel(
        source=source,
        model=None,
        tokenizer=tokenizer,
        device="cpu",
        dtype="gguf",
        load_seconds=time.perf_counter() - start,
        eos_ids=eos_ids,
        never_ids=tuple(sorted(gguf_vocab.never_drawn(loaded, eos_ids))),
        gguf=path,
        context_limit=int(limit) if limit and limit.isdigit() else None,
    )
