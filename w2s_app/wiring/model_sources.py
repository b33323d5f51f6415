"""The role factory: a preset's roles become loaded roles, and the roles choose their engine.

`SOURCES` says, for each kind of model source, how to load it as the strong model and as a guide,
which scorer a pair of its guides needs, and which engine samples it as the strong model. `ENGINES`
holds the engines that sample a local strong model, named by W2S_ENGINE. A new source kind, or a new
scorer its guides need, is one new file (its loaders, its scorer) plus one line in `SOURCES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends import llamacpp
from ..backends.api_config import is_api_source
from ..backends.roles import Models
from ..config import ROLES, Preset, RoleSpec
from ..contracts import Engine, Scorer
from ..engines.api_engine import ApiEngine
from ..engines.fake import FAKE_PREFIX, FakeSampler, FakeScorer
from ..engines.remote_scorer import RemoteGuidePair
from ..errors import RequestError
from ..search.guided import GuidedEngine
from .role_loaders import (
    LoadContext,
    api_guide,
    api_label,
    api_prepare,
    api_server,
    api_strong,
    fake_guide,
    fake_prepare,
    fake_strong,
    local_guide,
    local_prepare,
    local_strong,
)

# (models, the guides' scorer or None, W2S_THREADS or None) -> the engine over those roles.
EngineBuilder = Callable[[Models, Scorer | None, int | None], Engine]


class RoleError(RequestError):
    """A preset's roles cannot be set up as written (a request error: nothing ran)."""


@dataclass(frozen=True)
class SourceKind:
    """One kind of model source: how to recognise it, load it in each role, and run it."""

    name: str
    claims: Callable[[str], bool]
    strong: Callable[[RoleSpec, LoadContext], Any]
    guide: Callable[[RoleSpec, LoadContext, str], Any]  # (spec, context, "tuned guide") -> guide
    prepare: Callable[[RoleSpec, LoadContext], str]  # load ahead of time; says what it did
    remote: bool = False  # on a server: nothing loads here, so its settings are checked first
    # (tuned, untuned) -> the scorer of a pair of such guides; None: the local guides' scorer.
    scorer: Callable[[Any, Any], Scorer] | None = None
    # (models, scorer, threads) -> the engine, as the strong model; None: ENGINES[W2S_ENGINE].
    engine: EngineBuilder | None = None
    label: Callable[[Any], str] | None = None  # a loaded role's name in the store; None: its source
    server: Callable[[Any], str] | None = None  # a strong role's URL that must answer first


# The engines over local models import torch (and transformers) inside their builders: a process whose
# presets are all on servers or scripted (fake:), or a command that runs no model (leaderboard,
# export), starts without loading them.


def llamacpp_engine(models: Models, scorer: Scorer | None, threads: int | None = None) -> Engine:
    """The strong model sampled by llama.cpp in-process (GGUF sources), guides scored as given."""
    from ..engines.batched_sampler import BatchedSampler
    from ..engines.llamacpp_decoder import LlamaCppDecoder

    strong = models.strong
    if strong.loaded.gguf is None:
        raise RoleError(
            f"the llama.cpp engine samples GGUF models; {strong.spec.source!r} is not one (use W2S_ENGINE=fast)"
        )
    decoder = LlamaCppDecoder(llamacpp.context(strong.loaded.gguf, "strong", threads=threads))
    return GuidedEngine(BatchedSampler(strong, decoder), scorer or local_scorer(models, threads))


def local_scorer(models: Models, threads: int | None = None) -> Scorer:
    """The scorer of a local guide pair: in llama.cpp (on `threads`) when the guides were read from
    GGUF files for it, else the cached transformers scorer."""
    from ..engines.cached_scorer import CachedScorer
    from ..engines.llamacpp_scorer import LlamaCppScorer, guide_contexts

    if all(r.loaded.model is None and r.loaded.gguf is not None for r in (models.tuned, models.untuned)):
        return LlamaCppScorer(models, guide_contexts(models, threads))
    return CachedScorer(models)


def fast_engine(models: Models, scorer: Scorer | None, threads: int | None = None) -> Engine:
    """The strong model batched in transformers (exactly the reference's texts), EFT included."""
    from ..engines.batched_sampler import BatchedSampler
    from ..engines.eft_sampling import TorchEft
    from ..engines.torch_decoder import TorchDecoder

    sampler = BatchedSampler(models.strong, TorchDecoder(models.strong), eft=TorchEft(models))
    return GuidedEngine(sampler, scorer or local_scorer(models, threads))


def fake_engine(models: Models, scorer: Scorer | None, threads: int | None = None) -> Engine:
    """The scripted strong model (fake: sources) with the guides' scorer, fake or local."""
    return GuidedEngine(FakeSampler(models.strong), scorer or local_scorer(models, threads))


def reference_engine(models: Models, scorer: Scorer | None, threads: int | None = None) -> Engine:
    """The plain oracle: one stream and one score at a time, nothing cached."""
    from ..engines.plain_scorer import PlainScorer
    from ..engines.reference import ReferenceEngine

    return ReferenceEngine(models, scorer or PlainScorer(models))


def api_engine(models: Models, scorer: Scorer | None, threads: int | None = None) -> Engine:
    """A strong model behind a server; local guides scored where they were loaded (llama.cpp or transformers)."""
    return ApiEngine(models, scorer or local_scorer(models, threads))


# Engines over a local strong model, named by W2S_ENGINE.
ENGINES: dict[str, EngineBuilder] = {
    "reference": reference_engine,
    "fast": fast_engine,
    "llamacpp": llamacpp_engine,
}


def _is_folder(source: str) -> bool:
    return Path(source).expanduser().is_dir() or source.startswith((".", "/", "~"))


def _local(name: str, claims: Callable[[str], bool]) -> SourceKind:
    """A kind loaded by transformers into the pool (backends/local.py finds its files)."""
    return SourceKind(name, claims, local_strong, local_guide, local_prepare)


API = SourceKind(
    "api",  # an OpenAI-compatible server; as a guide, scored from prompt log-probabilities
    is_api_source,
    api_strong,
    api_guide,
    api_prepare,
    remote=True,
    scorer=RemoteGuidePair,
    engine=api_engine,
    label=api_label,
    server=api_server,
)

FAKE = SourceKind(
    "fake",  # scripted texts and scores, no model: for tests about the UI, store, service and limits
    lambda s: s.startswith(FAKE_PREFIX),
    fake_strong,
    fake_guide,
    fake_prepare,
    scorer=FakeScorer,
    engine=fake_engine,
)

# First match wins; the local kinds in local.resolve_source's order (a folder named like a hub id
# is a folder), the hub last (any other name is a hub id).
SOURCES: list[SourceKind] = [
    API,
    FAKE,
    _local("pip", lambda s: s.startswith("pip:")),
    _local("gguf", lambda s: s.endswith(".gguf")),
    _local("folder", _is_folder),
    _local("hub", lambda s: True),
]


def kind_of(source: str) -> SourceKind:
    """The kind of a role's source."""
    return next(kind for kind in SOURCES if kind.claims(source))


def load_models(preset: Preset, ctx: LoadContext) -> Models:
    """The three roles of a preset, loaded; remote roles first (their settings fail fast)."""
    name = preset.name
    specs = {role: getattr(preset, role) for role in ROLES}
    kinds = {role: kind_of(specs[role].source) for role in ROLES}
    if kinds["tuned"].scorer is not kinds["untuned"].scorer:
        raise RoleError(
            f"preset {name!r}: a guide pair must be both of one kind (both local, both remote (api) or "
            f"both fake); here the tuned guide's source is of kind {kinds['tuned'].name}, the untuned "
            f"guide's of kind {kinds['untuned'].name}"
        )
    loaded: dict[str, Any] = {}
    for role in sorted(ROLES, key=lambda r: not kinds[r].remote):
        spec, kind = specs[role], kinds[role]
        try:
            if role == "strong":
                loaded[role] = kind.strong(spec, ctx)
            else:
                loaded[role] = kind.guide(spec, ctx, f"{role} guide")
        except RoleError:
            raise
        except ValueError as exc:
            if not kind.remote:
                raise  # a local model that will not load is an outcome the store keeps
            raise RoleError(f"preset {name!r}: {exc}") from exc  # a remote role's setting is wrong
    return Models(**loaded)


def check_engine(strong: RoleSpec, name: str) -> None:
    """RoleError for an engine name that a local strong model would need and that does not exist."""
    if kind_of(strong.source).engine is None and name not in ENGINES:
        raise RoleError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")


def build_engine(models: Models, name: str, threads: int | None = None) -> Engine:
    """The engine for loaded roles: the strong model's sampler guided by the guide pair's scorer;
    `threads`: W2S_THREADS for llama.cpp (None: every core)."""
    guides = kind_of(models.tuned.spec.source)
    scorer = guides.scorer(models.tuned, models.untuned) if guides.scorer else None
    strong = kind_of(models.strong.spec.source)
    if strong.engine is not None:
        return strong.engine(models, scorer, threads)
    check_engine(models.strong.spec, name)
    return ENGINES[name](models, scorer, threads)


def engine_for(models: Models, name: str, scorer: Scorer | None = None, threads: int | None = None) -> Engine:
    """An engine of ENGINES (or the strong source's own) over loaded roles, with the scorer given or the
    guides' own (benchmarks and tests build engines this way)."""
    strong = kind_of(models.strong.spec.source)
    if strong.engine is not None:
        return strong.engine(models, scorer, threads)
    return ENGINES[name](models, scorer, threads)


def model_labels(preset: Preset, models: Models | None = None) -> dict[str, str]:
    """Each role's model as the store keeps it: its source, or what a loaded remote role names."""
    out = {}
    for role in ROLES:
        spec = getattr(preset, role)
        kind = kind_of(spec.source)
        loaded = getattr(models, role) if models is not None else None
        out[role] = kind.label(loaded) if kind.label and loaded is not None else spec.source
    return out


def strong_server(models: Models) -> str | None:
    """The strong model's server URL when it has one (checked before a comparison starts)."""
    kind = kind_of(models.strong.spec.source)
    return kind.server(models.strong) if kind.server else None


def prepare(spec: RoleSpec, ctx: LoadContext) -> str:
    """Load a role's model ahead of time; a line saying what happened."""
    return kind_of(spec.source).prepare(spec, ctx)
