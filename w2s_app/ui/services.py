"""What the UI needs from the rest of the app, built once and passed to the factory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..guard import RateLimiter
from ..runner import Runner
from ..store import Store

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@dataclass
class Services:
    """Runner, store, settings and the rate limiter of one running app."""

    settings: Settings
    runner: Runner
    store: Store
    limiter: RateLimiter
    oauth: bool = False  # a Space with `hf_oauth: true`: voters may log in with Hugging Face

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        """Open the store (migrating it) and make a runner that persists into it."""
        from .gpu import gpu_wrap

        store = Store.from_settings(settings)
        runner = Runner(settings, store=store)
        runner.compare = gpu_wrap(runner.compare)  # a no-op except on ZeroGPU Spaces
        # Spaces set OAUTH_CLIENT_ID only when the Space enables OAuth in its README metadata.
        oauth = bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))
        return cls(settings, runner, store, RateLimiter(settings.rate_limit), oauth)


def example_prompts() -> list[str]:
    """Example prompts shipped in assets/examples.txt."""
    path = ASSETS / "examples.txt"
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
