"""A GGUF model's tokenizer run by llama.cpp itself: nothing to build, convert or cache.

Roles on the llama.cpp path need a tokenizer for prompts (templates, chat templates), response ids
and the text of sampled ids. Building a transformers tokenizer from the GGUF metadata took 1.7 s
(SmolLM2) and 4.5 s (Gemma's 262k entries) on the first start and 2 s on every later one, only to
tokenize as llama.cpp already does. This is the part of the transformers tokenizer interface that
roles use, answered by the vocabulary llama.cpp loaded with the weights; chat templates are
rendered the way transformers renders them (sandboxed Jinja, trim_blocks and lstrip_blocks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from .llama_lib import ATTR_CONTROL, Model


@dataclass
class Encoding:
    """What calling a tokenizer returns: the ids."""

    input_ids: list[int]


def _raise(message: str) -> None:
    raise ValueError(message)


class GgufTokenizer:
    """Encode, decode and chat templates of a GGUF vocabulary, as a transformers tokenizer would."""

    def __init__(self, model: Model) -> None:
        self._model = model
        self.bos_token_id = model.bos() if model.bos() >= 0 else None
        self.eos_token_id = model.eos() if model.eos() >= 0 else None
        self.pad_token_id = model.pad() if model.pad() >= 0 else None
        self.chat_template = model.chat_template()
        self._pieces: dict[int, bytes] = {}

    def __len__(self) -> int:
        return self._model.n_vocab

    def __call__(self, text: str, add_special_tokens: bool = True) -> Encoding:
        """Token ids of a text; special-token markup in it ("<|im_start|>") becomes those tokens."""
        return Encoding(self._model.tokenize(text, add_special=add_special_tokens, parse_special=True))

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """The text of token ids; control tokens are dropped (skip_special_tokens) or written out."""
        if not skip_special_tokens:
            return self._model.detokenize(ids, special=True)
        pieces = self._pieces
        for t in ids:
            if t not in pieces:  # one ctypes call per distinct token, then a dict lookup
                pieces[t] = self._model.piece(t, special=False)
        return b"".join(pieces[t] for t in ids).decode(errors="replace")

    def convert_tokens_to_ids(self, token: str) -> int | None:
        """The id of a token written as text (e.g. "<|endoftext|>"), or None when it is not one token."""
        ids = self._model.tokenize(token, add_special=False, parse_special=True)
        return ids[0] if len(ids) == 1 else None

    def convert_ids_to_tokens(self, token: int) -> str:
        """A token's text, special tokens included."""
        return self._model.piece(token, special=True).decode(errors="replace")

    @cached_property
    def all_special_ids(self) -> list[int]:
        """Control tokens (BOS, EOS, turn markers...)."""
        return [t for t in range(len(self)) if self._model.attr(t) & ATTR_CONTROL]

    def get_vocab(self) -> dict[str, int]:
        """Token text to id (two vocabularies are the same when these are equal)."""
        return {self.convert_ids_to_tokens(t): t for t in range(len(self))}

    def apply_chat_template(
        self, messages: list[dict[str, str]], add_generation_prompt: bool = True, tokenize: bool = False
    ) -> str:
        """The conversation rendered by the file's chat template, as transformers renders it."""
        if tokenize:
            raise ValueError("GgufTokenizer renders text only; call the tokenizer on the result")
        if not self.chat_template:
            raise ValueError("this GGUF file has no chat template")
        return self._template.render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=self._text(self.bos_token_id),
            eos_token=self._text(self.eos_token_id),
        )

    @cached_property
    def _template(self) -> Any:
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = lambda value, indent=None: json.dumps(
            value, ensure_ascii=False, indent=indent
        )
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        return env.from_string(self.chat_template)

    def _text(self, token: int | None) -> str:
        return self.convert_ids_to_tokens(token) if token is not None else ""
