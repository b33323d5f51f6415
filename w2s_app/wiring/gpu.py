"""GPU placement on Hugging Face Spaces: ZeroGPU lends a GPU only inside functions marked spaces.GPU."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any


def on_zero_gpu(space_id: str | None) -> bool:
    """True on a Space (`space_id`: SPACE_ID, from Settings) whose hardware is ZeroGPU (the `spaces`
    package is present there)."""
    return bool(space_id) and importlib.util.find_spec("spaces") is not None


def gpu_wrap(fn: Callable[..., Any], duration: int = 120) -> Callable[..., Any]:
    """Wrap model work with spaces.GPU; only on ZeroGPU (`on_zero_gpu`), where the package exists."""
    import spaces

    return spaces.GPU(duration=duration)(fn)
