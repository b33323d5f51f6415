"""Where converted weights, GGUF tokenizers and adapters, and tiny test models are cached."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """User cache dir for converted weights (never inside the repository)."""
    env = os.environ.get("W2S_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "w2s-arena"
