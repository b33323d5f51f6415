"""The token ids of a GGUF vocabulary that a sampler must never draw (control, unused, media markers).

Read from llama.cpp's own token attributes, so every engine on the file (llama.cpp, or transformers
on the converted weights) masks the same ids. The tokenizer itself is `gguf_tokenizer`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .llama_lib import ATTR_CONTROL, ATTR_UNKNOWN, ATTR_UNUSED, ATTR_USER_DEFINED, Model

# Gemma's GGUF marks its image markers user-defined, as its Hugging Face tokenizer does (special:
# false), so they are found by name; its other user-defined tokens (HTML tags, runs of spaces or
# newlines) are text and stay drawable.
MEDIA_MARKER = re.compile(r"<(start|end)_of_(image|audio|video)>|<\w*soft_token>|\[multimodal\]")


def never_drawn(model: Model, eos_ids: Iterable[int] | None = None) -> frozenset[int]:
    """Ids a sampler must never draw: control, unused and unknown tokens and media markers, except EOS.

    eos_ids: the ids that end an answer (a role's stop ids); default: the vocabulary's EOS and EOT.
    """
    keep = {model.eos(), model.eot()} if eos_ids is None else set(eos_ids)
    banned = set()
    for tok in range(model.n_vocab):
        attr = model.attr(tok)
        if attr & (ATTR_CONTROL | ATTR_UNUSED | ATTR_UNKNOWN) or (
            attr & ATTR_USER_DEFINED and MEDIA_MARKER.fullmatch(model.piece(tok).decode(errors="replace"))
        ):
            banned.add(tok)
    return frozenset(banned - keep)


_NEVER: dict[tuple[Path, tuple[int, ...]], tuple[int, ...]] = {}


def never_drawn_in_file(gguf: Path, eos_ids: Iterable[int]) -> tuple[int, ...] | None:
    """`never_drawn` of a GGUF read with its vocabulary only (no weights); None without llama.cpp."""
    from .llama_lib import available

    key = (Path(gguf), tuple(sorted(eos_ids)))
    if key not in _NEVER:
        if not available():
            return None
        _NEVER[key] = tuple(sorted(never_drawn(Model(Path(gguf), vocab_only=True), key[1])))
    return _NEVER[key]
