"""The deployment's settings, from the environment (W2S_*): each declared once, with its variable and help.

`Settings.from_env` reads every field from the variable its declaration names, with one clear error
per bad value; docs/configuration.md, the configuration reference, lists the same declarations
(`env_reference`).
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .presets import DEFAULT_PRESET, Preset, load_presets

# W2S_DTYPE / --dtype values. int8 loads float32 weights, then quantizes the Linear layers (CPU only).
PRECISIONS = ("auto", "float32", "bfloat16", "float16", "int8")
ENGINE_NAMES = ("auto", "llamacpp", "fast", "reference")
# W2S_SECRET and W2S_ADMIN_KEY: shorter (surrounding spaces not counted) is guessable, so refused.
MIN_KEY_CHARS = 16


def default_data_dir() -> Path:
    """W2S_DATA_DIR, else /data when it exists and is writable (Spaces), else ./data."""
    env = os.environ.get("W2S_DATA_DIR")
    if env:
        return Path(env)
    spaces = Path("/data")
    if spaces.is_dir() and os.access(spaces, os.W_OK):
        return spaces
    return Path("data")


def _env(name: str, help_: str, default: Any = None, kind: str = "text", **extra: Any) -> Any:
    """A field read from variable `name` (kind: text, number, count, port, key, path, choice, list, proxies)."""
    meta = {"env": name, "help": help_, "kind": kind, **extra}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Everything configurable from the environment (docs/configuration.md)."""

    data_dir: Path = _env("W2S_DATA_DIR", "folder for the database, the secret and presets.toml", kind="path")
    db_url: str | None = _env(
        "W2S_DB_URL", "SQLAlchemy URL of the database (default: SQLite in the data dir)"
    )
    default_preset: str = _env("W2S_PRESET", "the preset the page opens on", DEFAULT_PRESET)
    device: str | None = _env(
        "W2S_DEVICE", "torch device of local transformers models (default: cuda, mps, cpu)"
    )
    dtype: str | None = _env(
        "W2S_DTYPE", "precision of local transformers models", kind="choice", choices=PRECISIONS
    )
    engine: str = _env(
        "W2S_ENGINE",
        "auto: llama.cpp for GGUF models on a CPU (strong and guides), else transformers; or llamacpp, fast, reference",
        "auto", kind="choice", choices=ENGINE_NAMES,
    )  # fmt: skip
    presets_files: tuple[Path, ...] = _env(
        "W2S_PRESETS", "extra presets files, separated by the path separator", (), kind="list"
    )
    api_base: str | None = _env("OPENAI_BASE_URL", "OpenAI-compatible server of the 'api' presets")
    api_model: str | None = _env("W2S_API_MODEL", "model name on that server")
    min_vote_seconds: float = _env(
        "W2S_MIN_VOTE_SECONDS", "votes faster than this after the answers appeared are refused", 2.0, "number"
    )
    rate_limit: int = _env(
        "W2S_RATE_LIMIT", "comparisons and votes per voter per minute (0: off)", 20, "count"
    )
    voter_cap: int = _env(
        "W2S_VOTER_CAP", "votes per voter (and per address) and preset that count on the leaderboard (0: all)",
        6, "count",
    )  # fmt: skip
    max_queue: int = _env("W2S_MAX_QUEUE", "comparisons waiting for the model; more get 'busy'", 32, "count")
    # Continuous batching: up to `concurrent` comparisons run at once, their streams (at most
    # `batch_rows`) decoding in one shared loop; batch_rows 0 runs comparisons one at a time.
    concurrent: int = _env("W2S_CONCURRENT", "comparisons running at once", 8, "count")
    batch_rows: int | None = _env(
        "W2S_BATCH_ROWS", "streams decoding in one shared batch (0: one at a time; default 18 on a CPU, 128 on a GPU)",
        None, "count",
    )  # fmt: skip
    # Public arena (docs/public-arena.md): secrets, limits by client address, cost cap.
    # A blank W2S_SECRET is refused (a deployment meant to share one must not silently get its own);
    # a blank W2S_ADMIN_KEY means no admin, as unset.
    secret: str | None = _env(
        "W2S_SECRET", "signs voter tokens, 16 characters or more (default: kept in <data dir>/secret.key)",
        kind="key", blank_is_error=True,
    )  # fmt: skip
    admin_key: str | None = _env(
        "W2S_ADMIN_KEY", "sees everyone's history and exports, 16 characters or more (empty: no admin)",
        kind="key",
    )  # fmt: skip
    serve_key: str | None = _env(
        "W2S_SERVE_KEY", "the service's bearer key (unset: any caller, voter api:anonymous)"
    )
    trusted_proxies: tuple[str, ...] = _env(
        "W2S_TRUSTED_PROXIES", "proxies whose X-Forwarded-For is believed ('private': any private address)",
        (), kind="proxies",
    )  # fmt: skip
    address_limit: int = _env(
        "W2S_ADDRESS_LIMIT", "comparisons and votes per client address per minute (0: off)", 60, "count"
    )
    token_limit: int = _env(
        "W2S_TOKEN_LIMIT", "new voter tokens per client address per minute (0: off)", 10, "count"
    )
    max_cost: int = _env(
        "W2S_MAX_COST",
        "estimated token work of one page comparison, or of a whole service request (0: off)",
        2048,
        "count",
    )
    request_seconds: float = _env(
        "W2S_REQUEST_SECONDS",
        "a page comparison, or a whole service request (all its choices), running longer is stopped (0: off)",
        120.0, "number",
    )  # fmt: skip
    export_ttl_seconds: float = _env(
        "W2S_EXPORT_TTL", "export files are deleted after this age (s)", 600.0, "number"
    )
    leaderboard_seconds: float = _env(
        "W2S_LEADERBOARD_SECONDS", "the cached leaderboard is refreshed at most this often (s)", 5.0, "number"
    )
    # Gradio's own variables, read here too so a bad port is one line at start, not a traceback.
    server_name: str = _env("GRADIO_SERVER_NAME", "where python app.py listens", "0.0.0.0")
    server_port: int = _env("GRADIO_SERVER_PORT", "the port python app.py listens on", 7860, "port")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read every declared variable; a bad value is one ConfigError naming it."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            values[f.name] = _parse(f.metadata, env.get(f.metadata["env"]), f.default)
        if values["data_dir"] is None:
            values["data_dir"] = default_data_dir()
        # Spaces put their own proxy (a private address) in front of the app.
        if env.get("W2S_TRUSTED_PROXIES") is None and env.get("SPACE_ID"):
            values["trusted_proxies"] = ("private",)
        # <data dir>/presets.toml is always read, before the files W2S_PRESETS names.
        values["presets_files"] = (Path(values["data_dir"]) / "presets.toml", *values["presets_files"])
        return cls(**values)

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


def _parse(meta: Any, raw: str | None, default: Any) -> Any:
    """One variable's value, typed as its declaration says."""
    name, kind = meta["env"], meta["kind"]
    if default is MISSING:
        default = None
    if raw is None or (raw == "" and not meta.get("blank_is_error")):  # empty reads as unset
        return default
    if kind == "key":
        return _key(name, raw)
    if kind == "port":
        return _port(name, raw)
    if kind == "proxies":
        return _proxies(name, raw)
    if kind == "path":
        return Path(raw)
    if kind == "list":
        return tuple(Path(p) for p in raw.split(os.pathsep) if p)
    if kind == "choice":
        if raw not in meta["choices"]:
            raise ConfigError(f"{name} must be one of {', '.join(meta['choices'])}, got {raw!r}")
        return raw
    if kind in ("number", "count"):
        try:
            value = int(raw) if kind == "count" else float(raw)
        except ValueError:
            what = "a whole number" if kind == "count" else "a number"
            raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
        if value < 0 or not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, not negative, got {raw!r}")
        return value
    return raw


def _key(name: str, raw: str) -> str:
    """A secret or key: refused blank or short, never echoed."""
    if not raw.strip():
        raise ConfigError(
            f"{name} is set but blank: set it to {MIN_KEY_CHARS} or more random characters, or unset it"
        )
    if len(raw.strip()) < MIN_KEY_CHARS:
        raise ConfigError(
            f"{name} is too short ({len(raw.strip())} characters): use {MIN_KEY_CHARS} or more random "
            "characters, e.g. from `openssl rand -hex 16`"
        )
    return raw


def _port(name: str, raw: str) -> int:
    """A TCP port to listen on: a whole number from 1 to 65535."""
    digits = raw.strip()
    port = int(digits) if digits.isascii() and digits.isdigit() else 0  # int() would take "7_860"
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name} must be a whole number from 1 to 65535, got {raw!r}")
    return port


def _proxies(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated IP addresses, CIDR networks or 'private', as limits.client_address reads them."""
    entries = tuple(p.strip() for p in raw.split(",") if p.strip())
    bad = []
    for entry in entries:
        if entry == "private":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)  # an address is a network of one
        except ValueError:
            bad.append(entry)
    if bad:
        raise ConfigError(
            f"{name} takes IP addresses, networks (e.g. 10.0.0.0/8) or 'private', comma-separated; "
            f"not {', '.join(map(repr, bad))}"
        )
    return entries


def env_reference() -> list[tuple[str, str, Any]]:
    """(variable, help, default) of every declared setting, for docs/configuration.md's reference table."""
    return [(f.metadata["env"], f.metadata["help"], f.default) for f in fields(Settings)]
