"""bon: best-of-N, N samples from the strong model; the one the guide pair scores highest wins."""

from __future__ import annotations

from typing import Any

from ...contracts import ROOT, SampleRequest, SamplingParams, ScoreRequest, SearchError, TraceStep
from .output import NO_ANSWER, MethodGen, MethodOutput


def bon(params: dict[str, Any], sp: SamplingParams) -> MethodGen:
    """Best-of-N: N samples (slots 0..N-1); the highest guide score wins, ties to the lower index."""
    n = params["n"]
    drawn = yield SampleRequest((ROOT,) * n, tuple(range(n)), sp.max_new_tokens, sp.seed)
    # A sample a server left empty after every retry drops out of the N (local samples never are).
    streams = [s for s in drawn if not s.empty]
    if not streams:
        raise SearchError(NO_ANSWER)
    scores = yield ScoreRequest(tuple(streams))
    best = max(range(len(streams)), key=lambda i: (scores[i], -i))
    step = TraceStep(
        step=0,
        parents=[-1] * len(streams),
        chunks=[s.text for s in streams],
        scores=list(scores),
        finished=[s.done for s in streams],
        kept=[best],
        carried=[False] * len(streams),
    )
    return MethodOutput(streams[best].text, scores[best], streams[best].eos, [step])
