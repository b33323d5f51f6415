"""The composition root: Settings in, a process's services out (store, runner, engines, limits, ...)."""

from .memory import limit_malloc_arenas
from .model_sources import ENGINES, engine_for
from .services import Services, build_runner, build_services
from .startup import StartupError, check_data_dir, startup_message

__all__ = [
    "ENGINES",
    "Services",
    "StartupError",
    "build_runner",
    "build_services",
    "check_data_dir",
    "engine_for",
    "limit_malloc_arenas",
    "startup_message",
]
