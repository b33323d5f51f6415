"""baseline: one plain sample from the strong model."""

from __future__ import annotations

from typing import Any

from ...contracts import ROOT, SampleRequest, SamplingParams
from .output import MethodGen, MethodOutput


def baseline(params: dict[str, Any], sp: SamplingParams) -> MethodGen:
    """One sample from the strong model (slot 0)."""
    (stream,) = yield SampleRequest((ROOT,), (0,), sp.max_new_tokens, sp.seed)
    return MethodOutput(stream.text, None, stream.eos, [])
