"""baseline: one plain sample from the strong model."""

from __future__ import annotations

from typing import Any

from ...contracts import ROOT, SampleRequest, SamplingParams, SearchError
from .output import NO_ANSWER, MethodGen, MethodOutput


def baseline(params: dict[str, Any], sp: SamplingParams) -> MethodGen:
    """One sample from the strong model (slot 0)."""
    (stream,) = yield SampleRequest((ROOT,), (0,), sp.max_new_tokens, sp.seed)
    if stream.empty:
        raise SearchError(NO_ANSWER)
    return MethodOutput(stream.text, None, stream.eos, [])
