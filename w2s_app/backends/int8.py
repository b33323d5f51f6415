"""int8 Linear layers for CPU: int8 weights (one scale per output row), int8 activations (one per token).

The product runs in integers (`torch._int_mm`, int32 sums, exact), and each token's activations get
their own scale, so a token's output does not depend on the other rows of its batch: the fast
engine (batched) and the reference (one stream at a time) still see the same logits for a stream,
which is what keeps their texts equal. A per-tensor activation scale (`quantize_dynamic`) would
couple the rows of a batch.
"""

from __future__ import annotations

from typing import Any

import torch

LEVELS = 127.0  # symmetric int8: -127..127
TINY = 1e-12  # scale floor, so an all-zero row (padding) quantizes to zeros instead of NaN


def _rows_to_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row of a 2-D float tensor as int8 values and its float32 scale (rows, 1)."""
    scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=TINY) / LEVELS
    return (x / scale).round().to(torch.int8), scale


class Int8Linear(torch.nn.Module):
    """A drop-in for torch.nn.Linear that stores int8 weights and multiplies in int8."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        q, scale = _rows_to_int8(linear.weight.detach().float())
        self.register_buffer("weight_int8", q)
        self.register_buffer("weight_scale", scale.reshape(1, -1))
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x @ W.T (+ bias), with x quantized per token."""
        flat = x.reshape(-1, self.in_features).float()
        if flat.shape[0] == 0:
            return x.new_zeros(*x.shape[:-1], self.out_features)
        q, scale = _rows_to_int8(flat)
        # The transposed view is the layout the CPU kernel is fastest on (measured: 2x a copy).
        out = torch._int_mm(q, self.weight_int8.t()).float() * scale * self.weight_scale
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_linears(model: Any) -> int:
    """Replace every torch.nn.Linear of a model by an Int8Linear in place; returns how many.

    LoRA adapter layers (names with 'lora_') stay in float: they are small, and the base layer
    under each of them is quantized like any other.
    """
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if type(module) is torch.nn.Linear and "lora_" not in name
    ]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Int8Linear(module))
    return len(targets)
