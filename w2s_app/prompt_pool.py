"""Prompt pools: the shipped prompts a rater gets from Next, and the examples each preset shows."""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from typing import Any

from .config import REPO

INSTRUCTIONS = REPO / "assets" / "prompts" / "instructions.txt"  # for presets without a pool of their own
EXAMPLES = 8  # how many of a pool's first prompts the Compare tab shows as examples


@lru_cache(maxsize=32)
def _read(path: str, mtime: float) -> tuple[str, ...]:
    """Non-empty lines of a pool file (cached until the file changes)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip())


def load_pool(path: Path) -> list[str]:
    """The prompts of a pool file, one a line, blank lines skipped."""
    return list(_read(str(path), Path(path).stat().st_mtime))


def pool_for(preset: Any) -> list[str]:
    """A preset's prompt pool: its `prompts` file, else the shipped instructions."""
    return load_pool(getattr(preset, "prompts", None) or INSTRUCTIONS)


def examples_for(preset: Any, count: int = EXAMPLES) -> list[str]:
    """The example prompts shown for a preset: the first ones of its pool."""
    return pool_for(preset)[:count]


def pick(pool: list[str], exclude: str | None = None, rng: random.Random | None = None) -> str:
    """A random prompt of the pool, other than `exclude` when the pool has another."""
    choices = [p for p in pool if p != (exclude or "").strip()] or pool
    if not choices:
        raise ValueError("the prompt pool is empty")
    return (rng or random).choice(choices)
