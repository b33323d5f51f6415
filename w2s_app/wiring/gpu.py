"""GPU placement on Hugging Face Spaces: ZeroGPU lends a GPU only inside functions marked spaces.GPU."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any


def on_zero_gpu() -> bool:
    """True on a Space whose hardware is ZeroGPU (the `spaces` package is present there)."""
    return bool(os.environ.get("SPACE_ID")) and importlib.util.find_spec("spaces") is not None


def gpu_wrap(fn: Callable[..., Any], duration: int = 120) -> Callable[..., Any]:
    """Wrap model work with spaces.GPU on ZeroGPU; elsewhere return the function unchanged."""
    if not on_zero_gpu():
        return fn
    import spaces

    return spaces.GPU(duration=duration)(fn)
