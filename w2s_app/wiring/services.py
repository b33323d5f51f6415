"""The composition root: one function builds a process's services from its Settings.

`python app.py`, `serve`, `serve --with-app` and the CLI's `generate`, `batch` and `evaluate` all
call `build_services`; nothing is configured afterwards by assigning attributes, so the page, the
service and the command line cannot drift apart (cost cap, deadline, recovery, limits, queue).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..backends.local import ModelPool, pick_device
from ..config import ConfigError, Preset, Settings
from ..gold_reward import GoldRewards
from ..identity import Identity, load_secret
from ..leaderboard.cache import LeaderboardCache
from ..limits import Limits, LimitSettings
from ..model_queue import ModelQueue
from ..options import OptionError
from ..runner import RequestLimits, Runner
from ..search.methods import parse_arm
from ..store import Store
from .engines import PresetEngines
from .gpu import gpu_wrap, on_zero_gpu
from .startup import check_data_dir


@dataclass
class Services:
    """Everything a running process serves with: settings, store, runner, identity, limits, board, queue."""

    settings: Settings
    store: Store
    runner: Runner
    engines: PresetEngines  # loaded presets: models and engines
    identity: Identity
    limits: Limits
    board: LeaderboardCache
    queue: ModelQueue  # the one bounded line for model work: the page and the service share it
    request_limits: RequestLimits  # what a comparison from the page or the service may cost
    oauth: bool = False  # a Space with `hf_oauth: true`: voters may log in with Hugging Face


# Streams in one shared batch when W2S_BATCH_ROWS is unset. On a 2-core CPU a step's cost grows with
# its rows, so two default comparisons (9 streams each) at a time served 8 raters best (mean wait
# 22.0 s, slowest 36.1 s; 128 rows: 36.7 s and 40.7 s; benchmarks/bench_app.py); a GPU step costs
# about the same for 9 or 72 streams, so there everyone joins.
CPU_BATCH_ROWS, GPU_BATCH_ROWS = 18, 128


def resolved(settings: Settings) -> Settings:
    """The settings with what depends on the machine filled in (W2S_BATCH_ROWS by device)."""
    if settings.batch_rows is not None:
        return settings
    rows = CPU_BATCH_ROWS if pick_device(settings.device) == "cpu" else GPU_BATCH_ROWS
    return replace(settings, batch_rows=rows)


def check_arms(presets: dict[str, Preset]) -> None:
    """Every declared arm names a method and valid settings (ConfigError naming the preset otherwise)."""
    for preset in presets.values():
        for arm in preset.arms:
            try:
                parse_arm(arm)
            except OptionError as exc:
                raise ConfigError(f"preset {preset.name!r}: arms: {exc}") from exc


def build_runner(settings: Settings, store: Store | None = None, pool: ModelPool | None = None) -> Runner:
    """A runner over the presets' engines (a store keeps every comparison; None keeps nothing)."""
    settings = resolved(settings)
    wrap = gpu_wrap if on_zero_gpu(settings.space_id) else None
    rewards = GoldRewards(store) if store is not None else None  # each stored answer's gold reward, later
    return Runner(settings, PresetEngines(settings, pool), store=store, wrap=wrap, after_stored=rewards)


def build_services(settings: Settings, pool: ModelPool | None = None) -> Services:
    """Check the data dir, open the store (migrated, interrupted comparisons recovered), wire the rest."""
    settings = resolved(settings)
    if settings.db_url is None or settings.secret is None:
        check_data_dir(settings.data_dir)  # StartupError: one line, exit 2
    check_arms(
        settings.presets()
    )  # a broken presets file is one line at start (ConfigError), not a failing page
    store = Store.from_settings(settings)
    # A comparison runs at most request_seconds; one still `running` well after that is dead.
    store.recover_running(older_than_seconds=max(settings.request_seconds, 600.0) * 2)
    runner = build_runner(settings, store, pool)  # model work wrapped on ZeroGPU only
    engines = runner.engines
    identity = Identity(load_secret(settings.data_dir, settings.secret), settings.admin_key)
    limits = Limits(
        store,
        LimitSettings(
            per_token=settings.rate_limit,
            per_address=settings.address_limit,
            tokens_per_address=settings.token_limit,
        ),
    )
    board = LeaderboardCache(
        store, min_interval=settings.leaderboard_seconds, voter_cap=settings.voter_cap,
        arms_of=lambda name: settings.preset(name).arms,
    )  # fmt: skip
    queue = ModelQueue(settings.max_queue, runner.concurrency)
    # Spaces set OAUTH_CLIENT_ID only when the Space enables OAuth in its README metadata.
    oauth = bool(settings.space_id and settings.oauth_client_id)
    request_limits = RequestLimits(settings.max_cost, settings.request_seconds)
    return Services(settings, store, runner, engines, identity, limits, board, queue, request_limits, oauth)
