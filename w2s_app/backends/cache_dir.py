"""Where converted weights, GGUF tokenizers and adapters, and tiny test models are cached."""

from __future__ import annotations

from pathlib import Path

from ..config.settings import cache_dir


def cache_root() -> Path:
    """User cache dir for converted weights (never inside the repository): W2S_CACHE_DIR, declared
    in config/settings.py, which reads it when a cache is written."""
    return cache_dir()
