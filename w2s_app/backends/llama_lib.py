"""llama.cpp in-process from a prebuilt PyPI wheel: one small typed interface over its C API.

The library is the one inside the `xllamacpp` wheel (MIT, manylinux2014, AVX2 build, nothing to
compile): its Python API is a server, but the extension exports llama.cpp's whole C API, so we
call that with ctypes. Struct layouts are not checked by ctypes, so they are declared here for the
pinned llama.cpp (`LIB_VERSION`) and verified at load against the library's own defaults; a wheel
with another layout is refused instead of corrupting memory. See notes/llama_binding.md.

Everything the engines need and nothing else: a model (vocabulary, token attributes, tokenizer,
LoRA adapters) and contexts with numbered KV sequences that decode batches of (token, position,
sequence, wants logits) items.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.metadata
import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from ctypes import POINTER, c_bool, c_char_p, c_float, c_int8, c_int32, c_size_t, c_uint32, c_void_p
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

LIB_PACKAGE = "xllamacpp"
LIB_VERSION = "2026.10.11549"  # llama.cpp b11549; the structs below are this version's llama.h

# enum llama_token_attr (bit flags)
ATTR_UNKNOWN, ATTR_UNUSED, ATTR_NORMAL, ATTR_CONTROL = 1, 2, 4, 8
ATTR_USER_DEFINED, ATTR_BYTE = 16, 32
MAX_SEQUENCES = 256  # llama.cpp's LLAMA_MAX_SEQ


class LlamaLibError(RuntimeError):
    """The llama.cpp library is missing, does not match, or refused a request."""


class _ModelParams(ctypes.Structure):
    _fields_ = [
        ("devices", c_void_p),
        ("tensor_buft_overrides", c_void_p),
        ("n_gpu_layers", c_int32),
        ("split_mode", c_int32),
        ("load_mode", c_int32),
        ("lazy_mode", c_int32),
        ("main_gpu", c_int32),
        ("tensor_split", c_void_p),
        ("progress_callback", c_void_p),
        ("progress_callback_user_data", c_void_p),
        ("kv_overrides", c_void_p),
        ("vocab_only", c_bool),
        ("check_tensors", c_bool),
        ("use_extra_bufts", c_bool),
        ("no_host", c_bool),
        ("no_alloc", c_bool),
        ("load_mtp", c_bool),
    ]


class _ContextParams(ctypes.Structure):
    _fields_ = [
        ("n_ctx", c_uint32),
        ("n_batch", c_uint32),
        ("n_ubatch", c_uint32),
        ("n_seq_max", c_uint32),
        ("n_rs_seq", c_uint32),
        ("n_outputs_max", c_uint32),
        ("n_outputs_max_per_seq", c_uint32),
        ("n_threads", c_int32),
        ("n_threads_batch", c_int32),
        ("ctx_type", c_int32),
        ("rope_scaling_type", c_int32),
        ("pooling_type", c_int32),
        ("attention_type", c_int32),
        ("flash_attn_type", c_int32),
        ("rope_freq_base", c_float),
        ("rope_freq_scale", c_float),
        ("yarn_ext_factor", c_float),
        ("yarn_attn_factor", c_float),
        ("yarn_beta_fast", c_float),
        ("yarn_beta_slow", c_float),
        ("yarn_orig_ctx", c_uint32),
        ("defrag_thold", c_float),
        ("cb_eval", c_void_p),
        ("cb_eval_user_data", c_void_p),
        ("type_k", c_int32),
        ("type_v", c_int32),
        ("moe_cache_size", c_size_t),
        ("abort_callback", c_void_p),
        ("abort_callback_data", c_void_p),
        ("embeddings", c_bool),
        ("offload_kqv", c_bool),
        ("no_perf", c_bool),
        ("op_offload", c_bool),
        ("swa_full", c_bool),
        ("kv_unified", c_bool),
        ("samplers", c_void_p),
        ("n_samplers", c_size_t),
        ("ctx_other", c_void_p),
    ]


class _LlamaBatch(ctypes.Structure):
    _fields_ = [
        ("n_tokens", c_int32),
        ("token", POINTER(c_int32)),
        ("embd", POINTER(c_float)),
        ("pos", POINTER(c_int32)),
        ("n_seq_id", POINTER(c_int32)),
        ("seq_id", POINTER(POINTER(c_int32))),
        ("logits", POINTER(c_int8)),
    ]


class _GgufInitParams(ctypes.Structure):
    _fields_ = [("no_alloc", c_bool), ("ctx", c_void_p)]


_LOG_FN = ctypes.CFUNCTYPE(None, c_int32, c_char_p, c_void_p)

# name: (result type, argument types); pointers to llama.cpp objects are opaque c_void_p.
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "llama_backend_init": (None, []),
    "llama_log_set": (None, [_LOG_FN, c_void_p]),
    "llama_print_system_info": (c_char_p, []),
    "llama_model_default_params": (_ModelParams, []),
    "llama_context_default_params": (_ContextParams, []),
    "llama_model_load_from_file": (c_void_p, [c_char_p, _ModelParams]),
    "llama_model_free": (None, [c_void_p]),
    "llama_model_meta_val_str": (c_int32, [c_void_p, c_char_p, c_char_p, c_size_t]),
    "llama_model_chat_template": (c_char_p, [c_void_p, c_char_p]),
    "llama_init_from_model": (c_void_p, [c_void_p, _ContextParams]),
    "llama_free": (None, [c_void_p]),
    "llama_set_n_threads": (None, [c_void_p, c_int32, c_int32]),
    "llama_get_memory": (c_void_p, [c_void_p]),
    "llama_memory_clear": (None, [c_void_p, c_bool]),
    "llama_memory_seq_rm": (c_bool, [c_void_p, c_int32, c_int32, c_int32]),
    "llama_memory_seq_cp": (None, [c_void_p, c_int32, c_int32, c_int32, c_int32]),
    "llama_memory_seq_pos_max": (c_int32, [c_void_p, c_int32]),
    "llama_decode": (c_int32, [c_void_p, _LlamaBatch]),
    "llama_get_logits_ith": (POINTER(c_float), [c_void_p, c_int32]),
    "llama_model_get_vocab": (c_void_p, [c_void_p]),
    "llama_vocab_n_tokens": (c_int32, [c_void_p]),
    "llama_vocab_get_attr": (c_int32, [c_void_p, c_int32]),
    "llama_vocab_is_eog": (c_bool, [c_void_p, c_int32]),
    "llama_vocab_bos": (c_int32, [c_void_p]),
    "llama_vocab_eos": (c_int32, [c_void_p]),
    "llama_vocab_eot": (c_int32, [c_void_p]),
    "llama_vocab_pad": (c_int32, [c_void_p]),
    "llama_vocab_get_add_bos": (c_bool, [c_void_p]),
    "llama_tokenize": (c_int32, [c_void_p, c_char_p, c_int32, POINTER(c_int32), c_int32, c_bool, c_bool]),
    "llama_token_to_piece": (c_int32, [c_void_p, c_int32, c_char_p, c_int32, c_int32, c_bool]),
    "llama_adapter_lora_init": (c_void_p, [c_void_p, c_char_p]),
    "llama_adapter_lora_free": (None, [c_void_p]),
    "llama_set_adapters_lora": (c_int32, [c_void_p, POINTER(c_void_p), c_size_t, POINTER(c_float)]),
    # ggml's GGUF reader: a file's metadata and tensor names without reading its weights.
    "gguf_init_from_file": (c_void_p, [c_char_p, _GgufInitParams]),
    "gguf_free": (None, [c_void_p]),
    "gguf_get_n_kv": (ctypes.c_int64, [c_void_p]),
    "gguf_get_key": (c_char_p, [c_void_p, ctypes.c_int64]),
    "gguf_get_kv_type": (c_int32, [c_void_p, ctypes.c_int64]),
    "gguf_get_val_u32": (ctypes.c_uint32, [c_void_p, ctypes.c_int64]),
    "gguf_get_val_i32": (c_int32, [c_void_p, ctypes.c_int64]),
    "gguf_get_val_u64": (ctypes.c_uint64, [c_void_p, ctypes.c_int64]),
    "gguf_get_val_str": (c_char_p, [c_void_p, ctypes.c_int64]),
    "gguf_get_n_tensors": (ctypes.c_int64, [c_void_p]),
    "gguf_get_tensor_name": (c_char_p, [c_void_p, ctypes.c_int64]),
}

_LIB: list[ctypes.CDLL] = []
_LIB_LOCK = threading.Lock()
# Set at interpreter exit: from then on models and contexts are left to the OS. Freed during the
# interpreter's teardown they would go in any order (a context after its model) and possibly while
# a daemon thread still decodes in them: native aborts at exit.
_EXITING: list[bool] = []


@atexit.register
def _at_exit() -> None:
    _EXITING.append(True)


_LOG_CALLBACK: list[object] = []  # the ctypes callback must outlive every llama.cpp call


def available() -> bool:
    """True when the wheel that carries the library is installed."""
    return importlib.util.find_spec(LIB_PACKAGE) is not None


def library() -> ctypes.CDLL:
    """The process's llama.cpp library, loaded and checked once."""
    with _LIB_LOCK:
        if not _LIB:
            lib = _open()
            for name, (res, args) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = res, args
            _check_layout(lib)
            lib.llama_backend_init()
            _LOG_CALLBACK.append(_LOG_FN(_log_errors))
            lib.llama_log_set(_LOG_CALLBACK[0], None)
            _LIB.append(lib)
        return _LIB[0]


def system_info() -> str:
    """llama.cpp's CPU feature line (AVX2, FMA, OPENMP, ...)."""
    return library().llama_print_system_info().decode()


def _open() -> ctypes.CDLL:
    """dlopen the extension module as a plain shared library (its Python module is never imported)."""
    spec = importlib.util.find_spec(LIB_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LlamaLibError(f"llama.cpp needs the prebuilt wheel: pip install {LIB_PACKAGE}=={LIB_VERSION}")
    files = sorted(
        f for d in spec.submodule_search_locations for f in Path(d).glob(f"{LIB_PACKAGE}*.so") if f.is_file()
    )
    if not files:
        raise LlamaLibError(f"no shared library inside the {LIB_PACKAGE} package ({spec.origin})")
    try:
        return ctypes.CDLL(str(files[0]))
    except OSError as exc:
        if "libgomp" not in str(exc):
            raise LlamaLibError(f"cannot load llama.cpp from {files[0]}: {exc}") from exc
    # The wheel links the system OpenMP runtime; torch's wheel ships the same soname, so a slim
    # image without libgomp1 can still load it (dlopen matches an already-loaded soname).
    torch = importlib.util.find_spec("torch")
    for d in (torch.submodule_search_locations or []) if torch else []:
        gomp = Path(d) / "lib" / "libgomp.so.1"
        if gomp.is_file():
            ctypes.CDLL(str(gomp))
            return ctypes.CDLL(str(files[0]))
    raise LlamaLibError("llama.cpp needs the OpenMP runtime: apt-get install libgomp1")


def _check_layout(lib: ctypes.CDLL) -> None:
    """Read the library's default parameters through our structs: a shifted field shows up here."""
    c = lib.llama_context_default_params()
    m = lib.llama_model_default_params()
    ok = (
        (c.n_ctx, c.n_batch, c.n_ubatch, c.n_seq_max, c.n_rs_seq, c.n_outputs_max_per_seq)
        == (512, 2048, 512, 1, 0, 1)
        and (c.yarn_ext_factor, c.defrag_thold, c.type_k, c.type_v) == (-1.0, -1.0, 1, 1)
        and (c.embeddings, c.offload_kqv, c.op_offload, c.swa_full, c.kv_unified)
        == (False, True, True, True, False)
        and not c.samplers
        and c.n_samplers == 0
        and not c.ctx_other
        and (m.n_gpu_layers, m.vocab_only, m.use_extra_bufts, m.no_alloc, m.load_mtp)
        == (-1, False, True, False, False)
    )
    if not ok:
        try:
            found = importlib.metadata.version(LIB_PACKAGE)
        except importlib.metadata.PackageNotFoundError:
            found = "unknown"
        raise LlamaLibError(
            f"{LIB_PACKAGE} {found} has a llama.cpp whose parameter structs differ from the ones declared "
            f"in {__name__}; install {LIB_PACKAGE}=={LIB_VERSION}"
        )


def _log_errors(level: int, text: bytes | None, data: object) -> None:
    """llama.cpp logs every tensor it loads; keep its errors only."""
    if level == 4 and text:  # GGML_LOG_LEVEL_ERROR
        log.error("llama.cpp: %s", text.decode(errors="replace").rstrip())


class Adapter:
    """A LoRA adapter loaded for one model (GGUF LoRA file); valid while the model lives."""

    def __init__(self, model: Model, path: Path) -> None:
        self.model, self.path = model, Path(path)
        self.handle = model.lib.llama_adapter_lora_init(model.handle, str(self.path).encode())
        if not self.handle:
            raise LlamaLibError(f"llama.cpp cannot load the LoRA adapter {self.path} for {model.path}")


class Model:
    """A GGUF model loaded once: its vocabulary, tokenizer and LoRA adapters; contexts decode."""

    def __init__(self, path: Path, vocab_only: bool = False) -> None:
        self.lib = library()
        self.path = Path(path)
        params = self.lib.llama_model_default_params()
        params.vocab_only = vocab_only  # the tokenizer alone: no weights read
        self.handle = self.lib.llama_model_load_from_file(str(self.path).encode(), params)
        if not self.handle:
            raise LlamaLibError(f"llama.cpp cannot load {self.path}")
        self.vocab = self.lib.llama_model_get_vocab(self.handle)
        self.n_vocab: int = self.lib.llama_vocab_n_tokens(self.vocab)

    def __del__(self) -> None:
        if getattr(self, "handle", None) and _LIB and not _EXITING:
            self.lib.llama_model_free(self.handle)
            self.handle = None

    def meta(self, key: str) -> str | None:
        """A GGUF metadata value as text (e.g. 'general.architecture'), or None."""
        buf = ctypes.create_string_buffer(1024)
        n = self.lib.llama_model_meta_val_str(self.handle, key.encode(), buf, len(buf))
        return buf.value.decode(errors="replace") if n >= 0 else None

    def attr(self, token: int) -> int:
        """llama.cpp's attribute flags of one token (ATTR_CONTROL, ATTR_UNUSED, ...)."""
        return self.lib.llama_vocab_get_attr(self.vocab, token)

    def is_eog(self, token: int) -> bool:
        """True for an end-of-generation token (EOS, EOT, ...)."""
        return bool(self.lib.llama_vocab_is_eog(self.vocab, token))

    def eos(self) -> int:
        """The vocabulary's EOS id (-1 when it has none)."""
        return self.lib.llama_vocab_eos(self.vocab)

    def eot(self) -> int:
        """The vocabulary's end-of-turn id (-1 when it has none)."""
        return self.lib.llama_vocab_eot(self.vocab)

    def bos(self) -> int:
        """The vocabulary's BOS id (-1 when it has none)."""
        return self.lib.llama_vocab_bos(self.vocab)

    def pad(self) -> int:
        """The vocabulary's padding id (-1 when it has none)."""
        return self.lib.llama_vocab_pad(self.vocab)

    def chat_template(self) -> str | None:
        """The file's default chat template (Jinja text), or None."""
        raw = self.lib.llama_model_chat_template(self.handle, None)
        return raw.decode() if raw else None

    def tokenize(self, text: str, add_special: bool = False, parse_special: bool = False) -> list[int]:
        """Token ids of a text; add_special adds BOS as the model asks, parse_special reads '<...>' markup."""
        raw = text.encode()
        size = len(raw) + 8
        while True:
            out = (c_int32 * size)()
            n = self.lib.llama_tokenize(self.vocab, raw, len(raw), out, size, add_special, parse_special)
            if n >= 0:
                return list(out[:n])
            size = -n  # too small: llama.cpp says how many it needs

    def piece(self, token: int, special: bool = True) -> bytes:
        """The bytes of one token (a piece may end inside a UTF-8 character)."""
        buf = ctypes.create_string_buffer(64)
        n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def detokenize(self, ids: Sequence[int], special: bool = False) -> str:
        """The text of token ids (control tokens dropped unless special)."""
        return b"".join(self.piece(t, special) for t in ids).decode(errors="replace")

    def lora(self, path: Path) -> Adapter:
        """Load a GGUF LoRA adapter for this model."""
        return Adapter(self, path)


class Context:
    """A KV cache of numbered sequences over one model; copied prefixes share cells."""

    def __init__(
        self,
        model: Model,
        n_ctx: int = 16384,
        n_seq_max: int = MAX_SEQUENCES,
        n_batch: int = 512,
        threads: int | None = None,
        adapter: Adapter | None = None,
    ) -> None:
        lib = self.lib = model.lib
        self.model = model
        threads = threads or os.cpu_count() or 1  # the caller passes W2S_THREADS (Settings.threads)
        p = lib.llama_context_default_params()
        p.n_ctx, p.n_batch, p.n_ubatch, p.n_seq_max = n_ctx, n_batch, n_batch, n_seq_max
        p.kv_unified = True  # one cache for all sequences: a copied prefix shares its cells
        p.swa_full = True  # sliding-window layers keep every position, so any prefix can be copied
        p.n_threads = p.n_threads_batch = threads
        self.handle = lib.llama_init_from_model(model.handle, p)
        if not self.handle:
            raise LlamaLibError(f"llama.cpp cannot create a context for {model.path} (n_ctx={n_ctx})")
        self.memory = lib.llama_get_memory(self.handle)
        self.n_seq_max, self.n_batch, self.n_vocab = n_seq_max, n_batch, model.n_vocab
        self.lock = threading.Lock()  # one caller decodes at a time
        self._adapter: Adapter | None = None
        self.set_adapter(adapter)
        # The batch lives in our arrays (llama_batch is plain pointers): filled by numpy, never freed by C.
        self._token = np.zeros(n_batch, np.int32)
        self._pos = np.zeros(n_batch, np.int32)
        self._n_seq = np.ones(n_batch, np.int32)
        self._seq = np.zeros(n_batch, np.int32)
        self._want = np.zeros(n_batch, np.int8)
        base = self._seq.ctypes.data
        self._seq_ptrs = (POINTER(c_int32) * n_batch)(
            *[ctypes.cast(base + 4 * i, POINTER(c_int32)) for i in range(n_batch)]
        )

    def __del__(self) -> None:
        if getattr(self, "handle", None) and _LIB and not _EXITING:
            self.lib.llama_free(self.handle)
            self.handle = None

    def set_adapter(self, adapter: Adapter | None, scale: float = 1.0) -> None:
        """Attach one LoRA adapter to this context (None: the plain model)."""
        if adapter is None:
            rc = self.lib.llama_set_adapters_lora(self.handle, None, 0, None)
        else:
            handles = (c_void_p * 1)(adapter.handle)
            rc = self.lib.llama_set_adapters_lora(self.handle, handles, 1, (c_float * 1)(scale))
        if rc != 0:
            raise LlamaLibError(f"llama.cpp refused the LoRA adapter (code {rc})")
        self._adapter = adapter  # keeps it alive while attached

    def set_threads(self, threads: int) -> None:
        """Threads for later decodes."""
        self.lib.llama_set_n_threads(self.handle, threads, threads)

    def clear(self) -> None:
        """Drop every sequence."""
        self.lib.llama_memory_clear(self.memory, True)

    def copy(self, src: int, dst: int, end: int = -1) -> None:
        """Sequence dst gets sequence src's positions before `end` (all by default): cells are shared."""
        self.lib.llama_memory_seq_cp(self.memory, src, dst, 0, end)

    def remove(self, seq: int, start: int = 0) -> None:
        """Forget a sequence's positions from `start` on (all of it by default)."""
        self.lib.llama_memory_seq_rm(self.memory, seq, start, -1)

    def length(self, seq: int) -> int:
        """Number of positions a sequence holds (its largest position + 1; 0 when empty)."""
        return self.lib.llama_memory_seq_pos_max(self.memory, seq) + 1

    def decode(self, items: Sequence[tuple[int, int, int, bool]]) -> np.ndarray:
        """Feed (token, position, sequence, wants logits) items; the flagged items' logits, in order."""
        rows: list[np.ndarray] = []
        for start in range(0, len(items), self.n_batch):
            part = np.asarray(items[start : start + self.n_batch], dtype=np.int64).reshape(-1, 4)
            n = len(part)
            self._token[:n], self._pos[:n], self._seq[:n], self._want[:n] = part.T
            batch = _LlamaBatch(
                n,
                self._token.ctypes.data_as(POINTER(c_int32)),
                None,
                self._pos.ctypes.data_as(POINTER(c_int32)),
                self._n_seq.ctypes.data_as(POINTER(c_int32)),
                ctypes.cast(self._seq_ptrs, POINTER(POINTER(c_int32))),
                self._want.ctypes.data_as(POINTER(c_int8)),
            )
            rc = self.lib.llama_decode(self.handle, batch)
            if rc != 0:
                raise LlamaLibError(
                    f"llama.cpp decode failed (code {rc}): the KV cache is full; use fewer or shorter streams"
                )
            for i in np.flatnonzero(self._want[:n]):
                ptr = self.lib.llama_get_logits_ith(self.handle, int(i))
                rows.append(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy())
        return np.stack(rows) if rows else np.zeros((0, self.n_vocab), np.float32)


GGUF_U32, GGUF_I32, GGUF_STRING, GGUF_U64 = 4, 5, 8, 10  # ggml's gguf_type values read here


def gguf_header(path: Path) -> tuple[dict[str, int | str], list[str]]:
    """A GGUF file's scalar integer and text metadata, and its tensor names (no weights read)."""
    lib = library()
    ctx = lib.gguf_init_from_file(str(path).encode(), _GgufInitParams(True, None))
    if not ctx:
        raise LlamaLibError(f"{path} is not a readable GGUF file")
    try:
        readers = {
            GGUF_U32: lib.gguf_get_val_u32,
            GGUF_I32: lib.gguf_get_val_i32,
            GGUF_U64: lib.gguf_get_val_u64,
            GGUF_STRING: lambda c, i: lib.gguf_get_val_str(c, i).decode(errors="replace"),
        }
        meta: dict[str, int | str] = {}
        n_kv = lib.gguf_get_n_kv(ctx)
        for i in range(n_kv):
            kind = lib.gguf_get_kv_type(ctx, i)
            if kind in readers:
                meta[lib.gguf_get_key(ctx, i).decode()] = readers[kind](ctx, i)
        names = [lib.gguf_get_tensor_name(ctx, i).decode() for i in range(lib.gguf_get_n_tensors(ctx))]
        return meta, names
    finally:
        lib.gguf_free(ctx)
