"""The search: the decoding methods, the driver that runs them on an engine, the shared loop that joins
comparisons, and the guided engine (a sampler guided by a scorer). Knows nothing of models, UI or storage."""

from .driver import MethodsRun, run_methods
from .guided import GuidedEngine, answer_all
from .methods import METHODS, comparison_cost, method_label, method_params, rows_needed
from .shared_loop import SharedLoop

__all__ = [
    "METHODS",
    "GuidedEngine",
    "MethodsRun",
    "SharedLoop",
    "answer_all",
    "comparison_cost",
    "method_label",
    "method_params",
    "rows_needed",
    "run_methods",
]
