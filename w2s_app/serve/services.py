"""What the API needs, built once and passed to `build_api` (no globals)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import Settings
from ..runner import Runner
from ..store import Store
from .queue import ModelQueue


@dataclass
class ApiServices:
    """Settings, the runner (with its store), the model queue and the optional bearer key."""

    settings: Settings
    runner: Runner
    queue: ModelQueue
    key: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, key: str | None = None) -> ApiServices:
        """Open the store (migrating it); the key defaults to W2S_SERVE_KEY."""
        runner = Runner(settings, store=Store.from_settings(settings))
        key = key if key is not None else os.environ.get("W2S_SERVE_KEY") or None
        return cls(settings, runner, ModelQueue(settings.max_queue, runner.concurrency), key)
