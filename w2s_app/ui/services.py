"""What the UI needs from the rest of the app, built once and passed to the factory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..identity import Identity, load_secret
from ..leaderboard.cache import LeaderboardCache
from ..limits import Limits, LimitSettings
from ..runner import Runner
from ..startup import check_data_dir
from ..store import Store

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@dataclass
class Services:
    """Runner, store, settings, identity (tokens), limits and the leaderboard cache of one running app."""

    settings: Settings
    runner: Runner
    store: Store
    identity: Identity
    limits: Limits
    board: LeaderboardCache
    oauth: bool = False  # a Space with `hf_oauth: true`: voters may log in with Hugging Face

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        """Check the data dir, open the store (migrating it, recovering interrupted comparisons), make a runner."""
        from .gpu import gpu_wrap

        if settings.db_url is None or settings.secret is None:
            check_data_dir(settings.data_dir)  # StartupError: one line, exit 2 (ui.main)
        store = Store.from_settings(settings)
        # A comparison runs at most request_seconds; one still `running` well after that is dead.
        store.recover_running(older_than_seconds=max(settings.request_seconds, 600.0) * 2)
        runner = Runner(settings, store=store)
        runner.max_cost = settings.max_cost
        runner.request_seconds = settings.request_seconds
        runner.compare = gpu_wrap(runner.compare)  # a no-op except on ZeroGPU Spaces
        return cls.around(settings, store, runner)

    @classmethod
    def around(cls, settings: Settings, store: Store, runner: Any) -> Services:
        """Identity, limits and the leaderboard cache around an existing store and runner."""
        identity = Identity(load_secret(settings.data_dir, settings.secret), settings.admin_key)
        limits = Limits(
            store,
            LimitSettings(
                per_token=settings.rate_limit,
                per_address=settings.address_limit,
                tokens_per_address=settings.token_limit,
                max_cost=settings.max_cost,
                request_seconds=settings.request_seconds,
            ),
        )
        board = LeaderboardCache(store, min_interval=settings.leaderboard_seconds)
        board.start()
        # Spaces set OAUTH_CLIENT_ID only when the Space enables OAuth in its README metadata.
        oauth = bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))
        return cls(settings, runner, store, identity, limits, board, oauth)


def example_prompts() -> list[str]:
    """Example prompts shipped in assets/examples.txt."""
    path = ASSETS / "examples.txt"
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
