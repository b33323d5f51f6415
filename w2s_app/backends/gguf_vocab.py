"""A GGUF model's vocabulary without converting its weights: the transformers tokenizer, and the
token ids a sampler must never draw.

The tokenizer is built from the GGUF metadata alone (transformers' own GGUF tokenizer conversion,
through `PreTrainedTokenizerFast` so that no model config is read; the config path parses the
whole file and takes 15 s for Gemma) and saved under the user cache dir; later loads read the
saved tokenizer.json. It encodes exactly as the tokenizer of the fully converted model does.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .cache_dir import cache_root
from .llama_lib import ATTR_CONTROL, ATTR_UNKNOWN, ATTR_UNUSED, ATTR_USER_DEFINED, Model

# Gemma's GGUF marks its image markers user-defined, as its Hugging Face tokenizer does (special:
# false), so they are found by name; its other user-defined tokens (HTML tags, runs of spaces or
# newlines) are text and stay drawable.
MEDIA_MARKER = re.compile(r"<(start|end)_of_(image|audio|video)>|<\w*soft_token>|\[multimodal\]")


def tokenizer(gguf: Path) -> Any:
    """The transformers tokenizer a GGUF file describes, built once from its metadata and cached."""
    from transformers import PreTrainedTokenizerFast

    gguf = Path(gguf)
    target = _cache_dir(gguf)
    if (target / ".complete").is_file():
        return PreTrainedTokenizerFast.from_pretrained(str(target))
    tok = PreTrainedTokenizerFast.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    tok.save_pretrained(str(tmp))
    (tmp / ".complete").write_text(str(gguf))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)  # last, so an interrupted save never looks complete
    return tok


def _cache_dir(gguf: Path) -> Path:
    """Keyed by the file (path, size, mtime) and the transformers version that converted it."""
    import transformers

    stat = gguf.stat()
    ident = f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{transformers.__version__}"
    return cache_root() / "tokenizers" / f"{gguf.stem}-{hashlib.sha1(ident.encode()).hexdigest()[:12]}"


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
