"""The deployment's settings, from the environment: each variable declared once, with its help,
default and parser.

This module is the one place that reads the process environment. `Settings.from_env` reads every
field from the variable its declaration names, with one clear error per bad value; a key (`KEYS`,
or a preset's `api_key_env`) is read by `read_key` only when it is needed, so no settings object
holds it. docs/configuration.md's tables are rendered from these declarations (`config.settings_doc`).
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
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
# The tables of docs/configuration.md, in order; each declaration names its table.
GROUPS = ("general", "limits", "api", "platform")
OPENAI_API_KEY = "OPENAI_API_KEY"


def default_data_dir() -> Path:
    """W2S_DATA_DIR, else /data when it exists and is writable (Spaces), else ./data."""
    env = os.environ.get("W2S_DATA_DIR")
    if env:
        return Path(env)
    spaces = Path("/data")
    if spaces.is_dir() and os.access(spaces, os.W_OK):
        return spaces
    return Path("data")


def _env(
    name: str, help_: str, default: Any = None, kind: str = "text", group: str = "general", **extra: Any
) -> Any:
    """A field read from variable `name` (kind: text, number, count, port, key, path, choice, list,
    proxies), listed in docs/configuration.md's `group` table; `shown` is the default as the doc
    says it when the field's own default is computed at start."""
    meta = {"env": name, "help": help_, "kind": kind, "group": group, **extra}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class KeyVariable:
    """A key's variable: declared like a setting, but read by `read_key` when needed, never held."""

    env: str
    help: str
    group: str


KEYS = (
    KeyVariable(
        OPENAI_API_KEY,
        "the key of the `api` presets' server and the judge's default key; never stored or shown (a "
        "preset's `api_key_env` names another variable for its roles)",
        "api",
    ),
)


def read_key(variable: str = OPENAI_API_KEY, env: Mapping[str, str] | None = None) -> str:
    """The key in `variable` at the moment it is needed ('' when unset): keys never sit in Settings."""
    return (os.environ if env is None else env).get(variable, "")


@dataclass(frozen=True)
class Settings:
    """Everything configurable from the environment (docs/configuration.md)."""

    data_dir: Path = _env(
        "W2S_DATA_DIR", "where the database, the secret and user presets live", kind="path",
        shown="`/data` if writable (Spaces), else `./data`",
    )  # fmt: skip
    db_url: str | None = _env(
        "W2S_DB_URL", "any SQLAlchemy URL, e.g. `postgresql+psycopg://user:pw@host/db`",
        shown="SQLite at `<data dir>/w2s.sqlite3` (WAL)",
    )  # fmt: skip
    default_preset: str = _env(
        "W2S_PRESET", "the preset the app opens with and the CLI uses without `--preset`", DEFAULT_PRESET
    )
    presets_files: tuple[Path, ...] = _env(
        "W2S_PRESETS", "extra presets files, separated by the path separator (`:`; `;` on Windows)",
        (), kind="list",
        shown="none (`<data dir>/presets.toml` is always read first)",
    )  # fmt: skip
    device: str | None = _env(
        "W2S_DEVICE", "torch device of local transformers models: `cuda`, `mps`, `cpu` or `auto`",
        shown="auto: cuda, then mps, then cpu",
    )  # fmt: skip
    dtype: str | None = _env(
        "W2S_DTYPE",
        "precision of transformers models (engines `fast` and `reference`): `float32`, `bfloat16`, "
        "`float16`, `int8` (CPU only) or `auto`; the CLI's `--dtype` overrides it (see "
        "[Precision](speed.md#precision))",
        kind="choice", choices=PRECISIONS,
        shown="`auto`: bf16 on CUDA (fp16 without bf16), fp16 on MPS; on a CPU float32 or int8, "
        "whichever a decode step runs faster on this CPU (measured once, cached)",
    )  # fmt: skip
    engine: str = _env(
        "W2S_ENGINE",
        "`auto`, `llamacpp` (GGUF models in-process in llama.cpp: the strong model and GGUF guides, "
        "adapters included), `fast` (transformers, batched, cached) or `reference` (the plain oracle)",
        "auto", kind="choice", choices=ENGINE_NAMES,
        shown="`auto`: `llamacpp` for a GGUF strong model on a CPU, else `fast`",
    )  # fmt: skip
    threads: int | None = _env(
        "W2S_THREADS", "CPU threads of llama.cpp (strong model and guides take turns on them; 0: every core)",
        None, "count", shown="every core",
    )  # fmt: skip
    cache_dir: Path | None = _env(
        "W2S_CACHE_DIR",
        "GGUF weights converted for transformers, adapters converted to GGUF, the CPU precision "
        "measurement, tiny test models",
        kind="path", shown="`$XDG_CACHE_HOME/w2s-arena`, else `~/.cache/w2s-arena`",
    )  # fmt: skip
    min_vote_seconds: float = _env(
        "W2S_MIN_VOTE_SECONDS", "votes faster than this after the answers appeared are refused", 2.0, "number"
    )
    max_queue: int = _env(
        "W2S_MAX_QUEUE", 'comparisons that may wait for the model; more get "queue is full"', 32, "count"
    )
    # Continuous batching: up to `concurrent` comparisons run at once, their streams (at most
    # `batch_rows`) decoding in one shared loop; batch_rows 0 runs comparisons one at a time.
    concurrent: int = _env(
        "W2S_CONCURRENT",
        "comparisons that run at once, joined into one decoding batch (engines `fast` and `llamacpp`; "
        "the others run one at a time)",
        8, "count",
    )  # fmt: skip
    batch_rows: int | None = _env(
        "W2S_BATCH_ROWS",
        "most streams in the joined batch (a comparison needs 1 + N + W*K); `0` runs comparisons one "
        "at a time",
        None, "count", shown="`18` on a CPU (two default comparisons at a time), `128` on a GPU",
    )  # fmt: skip
    # Public arena (docs/public-arena.md): secrets, limits by client address, cost cap.
    # A blank W2S_SECRET is refused (a deployment meant to share one must not silently get its own);
    # a blank W2S_ADMIN_KEY means no admin, as unset.
    secret: str | None = _env(
        "W2S_SECRET",
        "signs voter tokens, 16 characters or more; replicas must share it (see [Running a public "
        "arena](public-arena.md))",
        kind="key", blank_is_error=True, shown="kept in `<data dir>/secret.key`",
    )  # fmt: skip
    admin_key: str | None = _env(
        "W2S_ADMIN_KEY", "sees everyone's history and exports, 16 characters or more (empty: no admin)",
        kind="key",
    )  # fmt: skip
    serve_key: str | None = _env(
        "W2S_SERVE_KEY",
        "bearer key `python -m w2s_app serve` requires (unset: no key, voter `api:anonymous`, loopback "
        "only unless `--host`)",
    )  # fmt: skip
    rate_limit: int = _env(
        "W2S_RATE_LIMIT", "comparisons, and votes, per voter token (0 = off)", 20, "count", "limits"
    )
    address_limit: int = _env(
        "W2S_ADDRESS_LIMIT", "comparisons, and votes, per client address (0 = off)", 60, "count", "limits"
    )
    token_limit: int = _env(
        "W2S_TOKEN_LIMIT", "new voter tokens per client address (0 = off)", 10, "count", "limits"
    )
    voter_cap: int = _env(
        "W2S_VOTER_CAP",
        "not per minute: votes that count on the leaderboard, per voter and preset and per client "
        "address and preset (the first ones count; later votes are stored but not counted; 0 = all count)",
        6, "count", "limits",
    )  # fmt: skip
    max_cost: int = _env(
        "W2S_MAX_COST",
        "token work of one comparison (of a service request: all its choices together): strong tokens "
        "sampled plus guide tokens scored, estimated before it runs (baseline T, best-of-N 2NT, w2s "
        "2WKT, eft 3T; 0 = off)",
        2048, "count", "limits",
        shown="`2048` (the offline preset's default comparison is 1632, under a minute on a CPU)",
    )  # fmt: skip
    request_seconds: float = _env(
        "W2S_REQUEST_SECONDS",
        "a comparison running longer is stopped and marked failed; a service request's choices share "
        "it, counted once the request's turn comes and the models are loaded (0 = off)",
        120.0, "number", "limits",
    )  # fmt: skip
    trusted_proxies: tuple[str, ...] = _env(
        "W2S_TRUSTED_PROXIES",
        "whose `X-Forwarded-For` is believed: comma-separated IP addresses, networks (`10.0.0.0/8`) "
        "or `private`; any other entry stops start-up",
        (), "proxies", "limits", shown="none; `private` on Spaces",
    )  # fmt: skip
    export_ttl_seconds: float = _env(
        "W2S_EXPORT_TTL", "seconds before export files are deleted", 600.0, "number", "limits"
    )
    leaderboard_seconds: float = _env(
        "W2S_LEADERBOARD_SECONDS", "the cached leaderboard is refitted at most this often after votes (s)",
        5.0, "number", "limits",
    )  # fmt: skip
    # The strong model (or guides) on an OpenAI-compatible server; the key is in KEYS.
    api_base: str | None = _env(
        "OPENAI_BASE_URL", "the server of the `api` presets (`--api-base` overrides it)", group="api",
        shown="the preset's `api_base`, else `https://api.openai.com/v1`",
    )  # fmt: skip
    api_model: str | None = _env(
        "W2S_API_MODEL", "model name on that server (`--api-model` overrides it)", group="api",
        shown="the preset's `model`",
    )  # fmt: skip
    api_timeout: float = _env("W2S_API_TIMEOUT", "seconds to wait for one reply", 120.0, "number", "api")
    api_retries: int = _env("W2S_API_RETRIES", "retries after the first try", 4, "count", "api")
    api_max_seconds: float = _env(
        "W2S_API_MAX_SECONDS", "all tries of one request together, waits included", 300.0, "number", "api"
    )
    api_backoff: float = _env(
        "W2S_API_BACKOFF", "first wait between tries (doubles each time)", 1.0, "number", "api"
    )
    api_parallel: int = _env("W2S_API_PARALLEL", "concurrent requests per client", 8, "count", "api")
    # Gradio's own variables, read here too so a bad port is one line at start, not a traceback.
    server_name: str = _env(
        "GRADIO_SERVER_NAME", "where `python app.py` listens", "0.0.0.0", group="platform"
    )
    server_port: int = _env(
        "GRADIO_SERVER_PORT", "the port `python app.py` listens on (a whole number from 1 to 65535)",
        7860, "port", "platform",
    )  # fmt: skip
    # Set by Hugging Face Spaces, not by whoever deploys: the app reacts to them.
    space_id: str | None = _env(
        "SPACE_ID",
        "set on Hugging Face Spaces: ZeroGPU placement, `private` trusted proxies, Hugging Face login",
        group="platform",
    )  # fmt: skip
    oauth_client_id: str | None = _env(
        "OAUTH_CLIENT_ID",
        "set on a Space with `hf_oauth: true` in its README metadata: voters may log in with Hugging Face",
        group="platform",
    )  # fmt: skip
    xdg_cache_home: Path | None = _env(
        "XDG_CACHE_HOME", "the user's cache folder, under which `W2S_CACHE_DIR` defaults to `w2s-arena`",
        kind="path", group="platform", shown="`~/.cache`",
    )  # fmt: skip

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read every declared variable; a bad value is one ConfigError naming it."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            values[f.name] = _parse(f.metadata, env.get(f.metadata["env"]), f.default)
        if values["data_dir"] is None:
            values["data_dir"] = default_data_dir()
        values["cache_dir"] = _cache_dir(values["cache_dir"], values["xdg_cache_home"])
        # Spaces put their own proxy (a private address) in front of the app.
        if env.get("W2S_TRUSTED_PROXIES") is None and values["space_id"]:
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


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """W2S_CACHE_DIR, else $XDG_CACHE_HOME/w2s-arena, else ~/.cache/w2s-arena, as declared above
    (for the backends' caches, which find it when they write; `Settings.cache_dir` is the same)."""
    env = os.environ if env is None else env
    meta = {f.metadata["env"]: f.metadata for f in fields(Settings)}
    own, home = (_parse(meta[name], env.get(name), None) for name in ("W2S_CACHE_DIR", "XDG_CACHE_HOME"))
    return _cache_dir(own, home)


def _cache_dir(own: Path | None, cache_home: Path | None) -> Path:
    """The cache dir from its two variables' values."""
    return own or (cache_home or Path(os.path.expanduser("~")) / ".cache") / "w2s-arena"


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


@dataclass(frozen=True)
class Declared:
    """One declared variable as docs/configuration.md lists it."""

    env: str
    help: str
    default: str  # as the doc shows it
    group: str


def env_reference() -> list[Declared]:
    """Every declared variable (Settings' fields, then the keys), for docs/configuration.md's tables."""
    rows = [
        Declared(f.metadata["env"], f.metadata["help"], _shown(f.metadata, f.default), f.metadata["group"])
        for f in fields(Settings)
    ]
    return rows + [Declared(k.env, k.help, "none", k.group) for k in KEYS]


def _shown(meta: Any, default: Any) -> str:
    """A default as the doc writes it: the declaration's words, else the value in code style."""
    if "shown" in meta:
        return meta["shown"]
    if default is None or default == ():
        return "none"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"
