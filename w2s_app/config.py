"""Settings from the environment (W2S_*), the data dir, and the named presets."""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends.local import PRECISIONS
from .backends.roles import RoleSpec

BUILTIN_PRESETS = Path(__file__).with_name("presets.toml")
REPO = Path(__file__).resolve().parents[1]  # a preset's relative `prompts` path starts here
DEFAULT_PRESET = "sentiment-positive"  # the offline pair steers measurably there (README, evaluate)
ROLES = ("strong", "tuned", "untuned")
DEFAULT_KEYS = {"max_new_tokens", "temperature", "top_p", "seed", "w", "k", "l", "n", "beta", "noise"}


class ConfigError(ValueError):
    """Bad settings or presets; the message says which and why."""


@dataclass(frozen=True)
class Preset:
    """A named model setup: the strong model and the guide pair, plus default settings."""

    name: str
    description: str
    strong: RoleSpec
    tuned: RoleSpec
    untuned: RoleSpec
    defaults: dict[str, Any] = field(default_factory=dict)
    purpose: str = ""  # one line for the preset dropdown
    prompts: Path | None = None  # a prompt pool, one prompt a line (the Next button, examples)

    def models_summary(self) -> str:
        """One line naming the three models."""
        return f"strong={self.strong.source}; tuned={self.tuned.source}; untuned={self.untuned.source}"


def default_data_dir() -> Path:
    """W2S_DATA_DIR, else /data when it exists and is writable (Spaces), else ./data."""
    env = os.environ.get("W2S_DATA_DIR")
    if env:
        return Path(env)
    spaces = Path("/data")
    if spaces.is_dir() and os.access(spaces, os.W_OK):
        return spaces
    return Path("data")


def _preset_from_table(name: str, table: dict[str, Any], origin: str) -> Preset:
    """Validate one preset table."""
    try:
        roles = {r: RoleSpec.from_dict(table[r]) for r in ROLES}
    except KeyError as exc:
        raise ConfigError(f"preset {name!r} in {origin}: missing role [{name}.{exc.args[0]}]") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"preset {name!r} in {origin}: {exc}") from exc
    defaults = dict(table.get("defaults", {}))
    unknown = set(defaults) - DEFAULT_KEYS
    if unknown:
        raise ConfigError(f"preset {name!r} in {origin}: unknown defaults {sorted(unknown)}")
    prompts = table.get("prompts")
    if prompts is not None and (not isinstance(prompts, str) or not prompts.strip()):
        raise ConfigError(f"preset {name!r} in {origin}: prompts must be the path of a text file")
    if prompts and not (REPO / prompts).is_file():
        raise ConfigError(f"preset {name!r} in {origin}: prompts file {REPO / prompts} does not exist")
    return Preset(
        name,
        str(table.get("description", "")),
        defaults=defaults,
        purpose=str(table.get("purpose", "")),
        prompts=REPO / prompts if prompts else None,
        **roles,
    )


def load_presets(extra: list[Path] | None = None) -> dict[str, Preset]:
    """Built-in presets, then each extra file in order (later names replace earlier ones)."""
    presets: dict[str, Preset] = {}
    for path in [BUILTIN_PRESETS, *(extra or [])]:
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"presets file {path}: {exc}") from exc
        for name, table in data.items():
            if not isinstance(table, dict):
                raise ConfigError(f"presets file {path}: {name!r} is not a table")
            presets[name] = _preset_from_table(name, table, str(path))
    return presets


def _number(env: dict[str, str], key: str, default: Any, kind: type) -> Any:
    """A numeric environment variable, with a clear error when it is not a non-negative number."""
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from exc
    if value < 0 or not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, not negative, got {raw!r}")
    return value


def _precision(env: dict[str, str]) -> str | None:
    """W2S_DTYPE, checked against the known precisions (unset: the device's default)."""
    raw = env.get("W2S_DTYPE") or None
    if raw is not None and raw not in PRECISIONS:
        raise ConfigError(f"W2S_DTYPE must be one of {', '.join(PRECISIONS)}, got {raw!r}")
    return raw


@dataclass(frozen=True)
class Settings:
    """Everything configurable from the environment."""

    data_dir: Path
    db_url: str | None
    default_preset: str
    device: str | None
    dtype: str | None
    engine: str
    presets_files: tuple[Path, ...]
    api_base: str | None = None  # OpenAI-compatible server for 'api' presets (OPENAI_BASE_URL)
    api_model: str | None = None  # model name on that server (W2S_API_MODEL)
    min_vote_seconds: float = 2.0  # votes faster than this after the answers appeared are refused
    rate_limit: int = 20  # comparisons and votes per voter token per minute; 0 = off
    max_queue: int = 32  # comparisons waiting for a model; more get "busy, try again"
    # Continuous batching: up to `concurrent` comparisons run at once, their streams (at most
    # `batch_rows`) decoding in one shared loop; batch_rows 0 runs comparisons one at a time.
    concurrent: int = 8
    batch_rows: int = 128
    # Public arena (README, "Running a public arena"): secrets, limits by client address, cost cap.
    secret: str | None = None  # W2S_SECRET: signs voter tokens; else kept in <data dir>/secret.key
    admin_key: str | None = None  # W2S_ADMIN_KEY: sees everyone's history and exports
    trusted_proxies: tuple[str, ...] = ()  # W2S_TRUSTED_PROXIES: whose X-Forwarded-For is believed
    address_limit: int = 60  # comparisons and votes per client address per minute; 0 = off
    token_limit: int = 10  # new voter tokens per client address per minute; 0 = off
    max_cost: int = 2048  # estimated token work of one comparison (strong + guide tokens); 0 = off
    request_seconds: float = 120.0  # a comparison running longer is stopped; 0 = off
    export_ttl_seconds: float = 600.0  # export files are deleted after this age
    leaderboard_seconds: float = 5.0  # the cached leaderboard is refreshed at most this often

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read W2S_* variables (see README, configuration reference)."""
        env = dict(os.environ if env is None else env)
        data_dir = Path(env["W2S_DATA_DIR"]) if env.get("W2S_DATA_DIR") else default_data_dir()
        files = [data_dir / "presets.toml"]
        if env.get("W2S_PRESETS"):
            files += [Path(p) for p in env["W2S_PRESETS"].split(os.pathsep) if p]
        return cls(
            data_dir=data_dir,
            db_url=env.get("W2S_DB_URL") or None,
            default_preset=env.get("W2S_PRESET") or DEFAULT_PRESET,
            device=env.get("W2S_DEVICE") or None,
            dtype=_precision(env),
            engine=env.get("W2S_ENGINE", "fast"),
            presets_files=tuple(files),
            api_base=env.get("OPENAI_BASE_URL") or None,
            api_model=env.get("W2S_API_MODEL") or None,
            min_vote_seconds=_number(env, "W2S_MIN_VOTE_SECONDS", 2.0, float),
            rate_limit=_number(env, "W2S_RATE_LIMIT", 20, int),
            max_queue=_number(env, "W2S_MAX_QUEUE", 32, int),
            concurrent=_number(env, "W2S_CONCURRENT", 8, int),
            batch_rows=_number(env, "W2S_BATCH_ROWS", 128, int),
            secret=env.get("W2S_SECRET") or None,
            admin_key=env.get("W2S_ADMIN_KEY") or None,
            # Spaces put their own proxy (a private address) in front of the app.
            trusted_proxies=tuple(
                p.strip()
                for p in env.get("W2S_TRUSTED_PROXIES", "private" if env.get("SPACE_ID") else "").split(",")
                if p.strip()
            ),
            address_limit=_number(env, "W2S_ADDRESS_LIMIT", 60, int),
            token_limit=_number(env, "W2S_TOKEN_LIMIT", 10, int),
            max_cost=_number(env, "W2S_MAX_COST", 2048, int),
            request_seconds=_number(env, "W2S_REQUEST_SECONDS", 120.0, float),
            export_ttl_seconds=_number(env, "W2S_EXPORT_TTL", 600.0, float),
            leaderboard_seconds=_number(env, "W2S_LEADERBOARD_SECONDS", 5.0, float),
        )

    def presets(self) -> dict[str, Preset]:
        """All presets: built-in plus the user's files."""
        return load_presets(list(self.presets_files))

    def preset(self, name: str | None = None) -> Preset:
        """One preset by name, with a clear error listing the known ones."""
        name = name or self.default_preset
        presets = self.presets()
        if name not in presets:
            raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(presets))}")
        return presets[name]
