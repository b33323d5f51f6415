"""Contracts at the bottom of the house: request and answer types, the Engine / Sampler / Scorer
protocols with their declared abilities, the keyed noise every sampler draws, and stop-string rules.

Everything above imports these; they import nothing of the project but `errors` and `options`.
"""

from .protocols import (
    Cancelled,
    Engine,
    EngineAbilities,
    Hooks,
    Sampler,
    SamplerAbilities,
    Scorer,
    ScorerAbilities,
    SearchError,
)
from .types import (
    ROOT,
    Answer,
    Asked,
    Counts,
    EftRequest,
    Progress,
    SampleRequest,
    SamplingParams,
    ScoreRequest,
    SearchResult,
    Stream,
    TraceStep,
)

__all__ = [
    "ROOT",
    "Answer",
    "Asked",
    "Cancelled",
    "Counts",
    "EftRequest",
    "Engine",
    "EngineAbilities",
    "Hooks",
    "Progress",
    "SampleRequest",
    "Sampler",
    "SamplerAbilities",
    "SamplingParams",
    "ScoreRequest",
    "Scorer",
    "ScorerAbilities",
    "SearchError",
    "SearchResult",
    "Stream",
    "TraceStep",
]
