"""OpenAI-compatible service: every preset x method is a model (`build_api(services)`, `serve(...)`)."""

from .app import build_api
from .services import ApiServices

__all__ = ["ApiServices", "build_api"]
