"""OpenAI-compatible service: every preset x method is a model (`build_api(services)`, `serve(...)`)."""

from .app import build_api

__all__ = ["build_api"]
