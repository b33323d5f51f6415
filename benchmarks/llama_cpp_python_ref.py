"""The reference for benchmarks: llama.cpp through llama-cpp-python's low-level API (compiled here).

What the app's llama.cpp engine used before the prebuilt wheel (w2s_app/backends/llama_lib.py);
kept for benchmarks/bench_binding.py, which measures the two side by side on the same settings.
The text below is that module's.

A GGUF strong model run in-process by llama.cpp (the optional `llama-cpp-python` package).

llama.cpp reads the quantized GGUF weights directly, which on a CPU decodes several times faster
than transformers running the same weights de-quantized to float32. We use its low-level API:
one context with many KV sequences in one unified cache, so a search's beams share their prefix
cells (`llama_memory_seq_cp` adds a sequence id to cells, it copies no memory) and every live
stream decodes in one batch. Tokens and text still come from the transformers tokenizer the GGUF
converts to (the same vocabulary, checked at load).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from w2s_app.backends.local import ModelLoadError, resolve_source

log = logging.getLogger(__name__)


def available() -> bool:
    """True when llama-cpp-python is installed."""
    return importlib.util.find_spec("llama_cpp") is not None


def default_threads() -> int:
    """W2S_THREADS, else every core."""
    return int(os.environ.get("W2S_THREADS") or os.cpu_count() or 1)


class LlamaCppModel:
    """A llama.cpp model and context: batched decode over numbered KV sequences."""

    def __init__(
        self, gguf: Path, n_ctx: int = 16384, n_seq_max: int = 256, threads: int | None = None
    ) -> None:
        if not available():
            raise ModelLoadError(
                "the llama.cpp sampler needs llama-cpp-python: pip install llama-cpp-python "
                "(compiles once, a few minutes), or use W2S_ENGINE=fast"
            )
        import llama_cpp as lc

        self.lc = lc
        self.path = Path(gguf)
        lc.llama_backend_init()
        lc.llama_log_set(_log_callback(lc), ctypes.c_void_p())
        model = lc.llama_model_load_from_file(str(self.path).encode(), lc.llama_model_default_params())
        if not model:
            raise ModelLoadError(f"llama.cpp cannot load {self.path}")
        params = lc.llama_context_default_params()
        threads = threads or default_threads()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, 512, 512
        # Sequences and cells for several comparisons in one shared loop (W2S_BATCH_ROWS streams
        # plus their stored beams and prompts); 256 is llama.cpp's most.
        params.n_seq_max = n_seq_max
        params.kv_unified = True  # one cache for all sequences: copied prefixes share cells
        params.swa_full = True  # sliding-window layers keep every position, so any prefix can be copied
        params.n_threads = params.n_threads_batch = threads
        self.ctx = lc.llama_init_from_model(model, params)
        if not self.ctx:
            raise ModelLoadError(f"llama.cpp cannot create a context for {self.path}")
        self.model = model
        self.memory = lc.llama_get_memory(self.ctx)
        self.n_vocab = lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(model))
        self.n_seq_max = n_seq_max
        self.n_batch = 512
        self.batch = lc.llama_batch_init(self.n_batch, 0, 1)
        self.lock = threading.Lock()  # one sampler decodes at a time

    def clear(self) -> None:
        """Drop every sequence."""
        self.lc.llama_memory_clear(self.memory, True)

    def copy(self, src: int, dst: int) -> None:
        """Sequence dst becomes a copy of sequence src (shared cells)."""
        self.lc.llama_memory_seq_cp(self.memory, src, dst, -1, -1)

    def remove(self, seq: int) -> None:
        """Forget a sequence."""
        self.lc.llama_memory_seq_rm(self.memory, seq, -1, -1)

    def decode(self, items: list[tuple[int, int, int, bool]]) -> list[np.ndarray]:
        """Feed (token, position, sequence, want logits) items; the logits asked for, in order."""
        out: list[np.ndarray] = []
        for start in range(0, len(items), self.n_batch):
            part = items[start : start + self.n_batch]
            b = self.batch
            b.n_tokens = len(part)
            for i, (tok, pos, seq, logits) in enumerate(part):
                b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, 1, logits
                b.seq_id[i][0] = seq
            rc = self.lc.llama_decode(self.ctx, b)
            if rc != 0:
                raise RuntimeError(
                    f"llama.cpp decode failed (code {rc}): the KV cache is full; use fewer or shorter streams"
                )
            for i, (*_, logits) in enumerate(part):
                if logits:
                    ptr = self.lc.llama_get_logits_ith(self.ctx, i)
                    out.append(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy())
        return out


_CALLBACK: list[Any] = []  # the ctypes callback must outlive every llama.cpp call


def _log_callback(lc: Any) -> Any:
    """llama.cpp logs every tensor it loads; keep its errors only."""
    if not _CALLBACK:

        def quiet(level: int, text: bytes, data: Any) -> None:
            if level == 4:  # GGML_LOG_LEVEL_ERROR (5 continues the previous line)
                log.error("llama.cpp: %s", text.decode(errors="replace").rstrip())

        _CALLBACK.append(lc.llama_log_callback(quiet))
    return _CALLBACK[0]


_MODELS: dict[str, LlamaCppModel] = {}
_MODELS_LOCK = threading.Lock()


def llamacpp_model(source: str) -> LlamaCppModel:
    """The process's llama.cpp model for a GGUF source (a .gguf file or an offline pip package)."""
    kind, where, _ = resolve_source(source)
    if kind != "gguf":
        raise ModelLoadError(f"the llama.cpp sampler runs GGUF models only; {source!r} is a {kind} source")
    with _MODELS_LOCK:
        if source not in _MODELS:
            _MODELS[source] = LlamaCppModel(Path(where))
        return _MODELS[source]
