"""Presets as the runner sees them: each loaded once, with one engine that lives as long as the process."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..backends import llamacpp
from ..backends.local import ModelPool, pick_device
from ..backends.roles import Models
from ..config import ROLES, Preset, Settings
from ..contracts import Engine
from ..errors import RequestError
from . import model_sources
from .role_loaders import LoadContext, is_gguf


@dataclass
class LoadedPreset:
    """A preset's loaded roles, its engine, and the checks a comparison needs before it runs."""

    models: Models
    engine: Engine
    labels: dict[str, str]  # each role's model as the store keeps it (never a key)
    server: str | None = None  # the strong model's server, when it has one

    def check_ready(self, timeout: float = 5.0) -> None:
        """RequestError when nothing listens at the strong model's server (a wrong URL, a server down)."""
        if self.server is None:
            return
        parts = urlsplit(self.server)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except OSError as exc:
            raise RequestError(
                f"cannot reach the API server at {parts.scheme}://{host}:{port}: {exc.strerror or exc}"
            ) from exc

    def check_context(self, prompt: str, max_new_tokens: int) -> None:
        """RequestError for a prompt that, templated, leaves no room for the answer in a model's context."""
        for name in ROLES:
            role = getattr(self.models, name)
            limit = role.context_limit
            if not limit:
                continue  # a remote model reports its own limit
            used, _ = role.count_tokens(prompt, "")
            if used + max_new_tokens > limit:
                raise RequestError(
                    f"the prompt is too long for the {name} model: {used} tokens plus {max_new_tokens} "
                    f"new tokens exceed its context of {limit} tokens"
                )

    def count_tokens(self, prompt: str, text: str) -> tuple[int, int] | None:
        """The strong model's tokens of the templated prompt and of an answer (None: the server's count)."""
        return self.models.strong.count_tokens(prompt, text)


class PresetEngines:
    """Loads each preset's models once (through one model pool) and keeps one engine per preset."""

    def __init__(self, settings: Settings, pool: ModelPool | None = None) -> None:
        self.settings = settings
        self.pool = pool or ModelPool(settings.device, settings.dtype)
        self._loaded: dict[tuple[str, str], LoadedPreset] = {}
        self._lock = threading.Lock()

    def engine_name(self, preset: Preset) -> str:
        """W2S_ENGINE, or for `auto`: llama.cpp for a GGUF strong model on a CPU, else transformers."""
        if self.settings.engine != "auto":
            return self.settings.engine
        return "llamacpp" if self._llama_here() and is_gguf(preset.strong.source) else "fast"

    def _llama_here(self) -> bool:
        """llama.cpp is the CPU path: installed, and the models would run on the CPU."""
        return llamacpp.available() and pick_device(self.settings.device) == "cpu"

    def check(self, preset: Preset) -> None:
        """RequestError for an engine name the preset's strong model would need and that does not exist."""
        model_sources.check_engine(preset.strong, self.engine_name(preset))

    def labels(self, preset: Preset) -> dict[str, str]:
        """Each role's model as written in the preset (before anything loads)."""
        return model_sources.model_labels(preset)

    def load(self, preset: Preset) -> LoadedPreset:
        """The preset's models and engine, loaded on first use (RequestError: its settings are wrong)."""
        name = self.engine_name(preset)
        key = (preset.name, name)
        with self._lock:
            if key not in self._loaded:
                models = model_sources.load_models(preset, self._context(name))
                engine = model_sources.build_engine(models, name, self.settings.threads)
                self._loaded[key] = LoadedPreset(
                    models,
                    engine,
                    model_sources.model_labels(preset, models),
                    model_sources.strong_server(models),
                )
            return self._loaded[key]

    def _context(self, engine: str) -> LoadContext:
        """How roles load for an engine: GGUF roles in llama.cpp on its path (guides too, under auto)."""
        llama = engine == "llamacpp" or (self.settings.engine == "auto" and self._llama_here())
        s = self.settings
        tries = {
            "timeout": s.api_timeout,
            "max_retries": s.api_retries,
            "max_seconds": s.api_max_seconds,
            "backoff": s.api_backoff,
            "parallel": s.api_parallel,
        }
        return LoadContext(self.pool, s.api_base, s.api_model, llama, tries)

    def prepare(self, preset: Preset) -> list[str]:
        """Load every role now (the first comparison then does not wait); a line per role."""
        ctx = self._context(self.engine_name(preset))
        return [
            f"{r}: {getattr(preset, r).source} {model_sources.prepare(getattr(preset, r), ctx)}"
            for r in ROLES
        ]

    def loaded(self) -> dict[tuple[str, str], Any]:
        """What is loaded so far (tests and benchmarks)."""
        return dict(self._loaded)
