"""How a role's spec becomes a loaded role: a pooled local model, an API client, a remote guide."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..backends.adapters import adapter_off, pooled_adapted
from ..backends.local import ModelPool
from ..backends.openai_api import ApiRole, api_role
from ..backends.remote_guide import RemoteGuide, remote_guide
from ..backends.roles import Role
from ..config import RoleSpec
from ..engines.fake import FakeOptions, FakeRole


@dataclass(frozen=True)
class LoadContext:
    """What loading needs besides a role's spec: the model pool and the command line's API settings."""

    pool: ModelPool
    api_base: str | None = None  # --api-base / OPENAI_BASE_URL: the strong model's server
    api_model: str | None = None  # --api-model / W2S_API_MODEL


def local_strong(spec: RoleSpec, ctx: LoadContext) -> Role:
    """The strong model from the pool (loaded once, shared with every role and comparison)."""
    return Role(spec, ctx.pool.get(spec.source))


def local_guide(spec: RoleSpec, ctx: LoadContext, name: str) -> Role:
    """A guide: a pooled model, or base + adapter (on or off, one shared copy of the weights)."""
    if not spec.adapter:
        return Role(spec, ctx.pool.get(spec.source))
    loaded = pooled_adapted(ctx.pool, spec.source, spec.adapter)
    return Role(spec, loaded if spec.use_adapter else adapter_off(loaded))


def local_prepare(spec: RoleSpec, ctx: LoadContext) -> str:
    """Load (or convert) the weights now, so the first comparison does not wait."""
    loaded = ctx.pool.get(spec.source)
    return f"ready on {loaded.device} ({loaded.load_seconds:.1f} s)"


def api_strong(spec: RoleSpec, ctx: LoadContext) -> ApiRole:
    """The strong model on an OpenAI-compatible server; the command line's server and model win."""
    return api_role(spec, ctx.api_base, ctx.api_model)


def api_guide(spec: RoleSpec, ctx: LoadContext, name: str) -> RemoteGuide:
    """A guide on a server, scored from prompt log-probabilities (its own api_base, never the strong's)."""
    return remote_guide(spec, name)


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
