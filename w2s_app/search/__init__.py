"""Search: the guide-pair scorer and the decoding methods. Knows nothing of UI or storage."""

from .driver import run_methods
from .engine import Answer, Cancelled, Engine, Models, ReferenceEngine, SearchError
from .methods import METHODS, method_params
from .types import SamplingParams, SearchResult, TraceStep

__all__ = [
    "METHODS",
    "Answer",
    "Cancelled",
    "Engine",
    "Models",
    "ReferenceEngine",
    "SamplingParams",
    "SearchError",
    "SearchResult",
    "TraceStep",
    "method_params",
    "run_methods",
]
