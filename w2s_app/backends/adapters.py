"""Adapter guide pairs: base + LoRA adapter (tuned) and the same weights with it off (untuned).

Both roles share one copy of the weights: the untuned role's model is a thin module that runs the
adapted model inside `disable_adapter()`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .int8 import quantize_linears
from .local import LoadedModel, ModelLoadError, ModelPool, load_model

REPO = Path(__file__).resolve().parents[2]


def resolve_adapter(path: str) -> Path:
    """An adapter folder as given, or relative to the repository (for shipped assets/guides/...)."""
    for candidate in (Path(path).expanduser(), REPO / path):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise ModelLoadError(
        f"adapter {path!r} not found (a folder with adapter_config.json); train one with tune-guide"
    )


def load_adapted(source: str, adapter: str, device: str | None, dtype: str | None) -> LoadedModel:
    """A fresh copy of the base model with the adapter attached (its own weights, not the pool's)."""
    from peft import PeftModel

    # PEFT attaches LoRA to float Linear layers only, so int8 quantizes after the adapter is on.
    loaded = load_model(source, device, dtype, quantize=False)
    folder = resolve_adapter(adapter)
    model = PeftModel.from_pretrained(loaded.model, str(folder)).eval()
    if dtype == "int8":
        quantize_linears(model)
    return replace(loaded, source=f"{source}+{adapter}", model=model)


def pooled_adapted(pool: ModelPool, source: str, adapter: str) -> LoadedModel:
    """Base + adapter from the pool: loaded once per (source, adapter), as its own copy of the weights."""
    return pool.get_or_load(
        f"{source}+{adapter}", lambda: load_adapted(source, adapter, pool.device, pool.dtype)
    )


class AdapterOff(torch.nn.Module):
    """Runs an adapted model with its adapter disabled: the untuned guide, sharing the weights."""

    def __init__(self, adapted: Any) -> None:
        super().__init__()
        self.adapted = adapted

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The adapted model's forward pass, adapter off."""
        with self.adapted.disable_adapter():
            return self.adapted(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.adapted, name)


def adapter_off(loaded: LoadedModel) -> LoadedModel:
    """The same loaded model, adapter disabled."""
    return replace(loaded, source=f"{loaded.source} (adapter off)", model=AdapterOff(loaded.model))
