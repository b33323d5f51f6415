"""The search: the decoding methods, the driver that runs them on an engine, the shared loop that joins
comparisons, and the engine made of a sampler and a scorer. Knows nothing of models, UI or storage."""

from .driver import MethodsRun, run_methods
from .joined import JoinedEngine, answer_all
from .methods import METHODS, comparison_cost, method_label, method_params, rows_needed
from .shared_loop import SharedLoop

__all__ = [
    "METHODS",
    "JoinedEngine",
    "MethodsRun",
    "SharedLoop",
    "answer_all",
    "comparison_cost",
    "method_label",
    "method_params",
    "rows_needed",
    "run_methods",
]
