"""eft: emulated fine-tuning, per token a sample from logits_S + beta * (log G+ - log G-)."""

from __future__ import annotations

from typing import Any

from ...contracts import EftRequest, SamplingParams
from .output import MethodGen, MethodOutput


def eft(params: dict[str, Any], sp: SamplingParams) -> MethodGen:
    """The whole answer in one request: only a sampler with all three models' logits can answer it."""
    (stream,) = yield EftRequest(float(params["beta"]), 0, sp.seed)
    return MethodOutput(stream.text, None, stream.eos, [])
