"""How a role's spec becomes a loaded role: a pooled local model, an API client, a remote guide."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..backends.llamacpp import load_gguf_role_model
from ..backends.local import LoadedModel, ModelPool, resolve_source
from ..backends.remote_guide import RemoteGuide, remote_guide
from ..backends.roles import ApiRole, Role, api_role
from ..config import OPENAI_API_KEY, RoleSpec, read_key
from ..engines.fake import FakeOptions, FakeRole


@dataclass(frozen=True)
class LoadContext:
    """What loading needs besides a role's spec: the model pool and the command line's API settings."""

    pool: ModelPool
    api_base: str | None = None  # --api-base / OPENAI_BASE_URL: the strong model's server
    api_model: str | None = None  # --api-model / W2S_API_MODEL
    llama: bool = False  # GGUF roles run in llama.cpp (read from the file, no transformers weights)
    # How hard a remote role tries (W2S_API_*): ApiConfig's timeout, max_retries, max_seconds,
    # backoff and parallel.
    api_tries: dict[str, float] = field(default_factory=dict)


def local_strong(spec: RoleSpec, ctx: LoadContext) -> Role:
    """The strong model from the pool (loaded once, shared with every role and comparison)."""
    return Role(spec, _pooled(spec, ctx))


def local_guide(spec: RoleSpec, ctx: LoadContext, name: str) -> Role:
    """A guide: a pooled model, or base + adapter (on or off, one shared copy of the weights). In
    llama.cpp the adapter is attached to the guide's context (the scorer's), not to the model."""
    if not spec.adapter or (ctx.llama and is_gguf(spec.source)):
        return Role(spec, _pooled(spec, ctx))
    # Imported here: adapters need torch and peft, which a process without local guides never loads.
    from ..backends.adapters import adapter_off, pooled_adapted

    loaded = pooled_adapted(ctx.pool, spec.source, spec.adapter)
    return Role(spec, loaded if spec.use_adapter else adapter_off(loaded))


def _pooled(spec: RoleSpec, ctx: LoadContext) -> LoadedModel:
    """A GGUF for llama.cpp (no conversion) when asked, else the transformers model."""
    if ctx.llama and is_gguf(spec.source):
        _, path, _ = resolve_source(spec.source)
        return ctx.pool.get_or_load(f"llama:{spec.source}", lambda: load_gguf_role_model(spec.source, path))
    return ctx.pool.get(spec.source)


def is_gguf(source: str) -> bool:
    """A source whose weights are a GGUF file (an offline pip package, or a .gguf path)."""
    return source.startswith("pip:") or source.endswith(".gguf")


def local_prepare(spec: RoleSpec, ctx: LoadContext) -> str:
    """Load (or convert) the weights now, so the first comparison does not wait."""
    loaded = _pooled(spec, ctx)
    where = "in llama.cpp" if loaded.gguf is not None and loaded.model is None else f"on {loaded.device}"
    return f"ready {where} ({loaded.load_seconds:.1f} s)"


def api_strong(spec: RoleSpec, ctx: LoadContext) -> ApiRole:
    """The strong model on an OpenAI-compatible server; the command line's server and model win."""
    key = read_key(spec.api_key_env or OPENAI_API_KEY)
    return api_role(spec, ctx.api_base, ctx.api_model, key, **ctx.api_tries)


def api_guide(spec: RoleSpec, ctx: LoadContext, name: str) -> RemoteGuide:
    """A guide on a server, scored from prompt log-probabilities (its own api_base, never the strong's)."""
    # Without api_key_env a guide sends no key: the strong model's OPENAI_API_KEY is not its to use.
    key = read_key(spec.api_key_env) if spec.api_key_env else ""
    return remote_guide(spec, name, key, **ctx.api_tries)


def api_prepare(spec: RoleSpec, ctx: LoadContext) -> str:
    """Nothing to load: the server holds the weights."""
    return "is a remote model; nothing to load"


def api_label(role: Any) -> str:
    """Which remote model, for the store: server and model, never the key."""
    return f"api:{role.describe()}"


def api_server(role: ApiRole) -> str:
    """The URL that must answer before a comparison starts."""
    return role.client.config.base_url


def fake_strong(spec: RoleSpec, ctx: LoadContext) -> FakeRole:
    """A scripted strong model (options in its source: fake:same,delay=0.01)."""
    return FakeRole(spec, FakeOptions.parse(spec.source))


def fake_guide(spec: RoleSpec, ctx: LoadContext, name: str) -> FakeRole:
    """A scripted guide: the fake scorer scores texts by their words."""
    return FakeRole(spec, FakeOptions.parse(spec.source))


def fake_prepare(spec: RoleSpec, ctx: LoadContext) -> str:
    """Nothing to load."""
    return "is a fake model; nothing to load"
