"""Where an OpenAI-compatible server is, which model, how hard to try, and what of that is safe to show.

The API key lives only in the configuration (kept out of its repr) and the client: never in a log
line or an error message (`redact`, `public_url`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

API_SOURCE = "api"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
_SECRET_PATTERN = re.compile(r"\b(sk|key|tok)-[A-Za-z0-9*_\-]{4,}")


def is_api_source(source: str) -> bool:
    """True for a role source that names a remote model: 'api' or 'api:MODEL'."""
    return source == API_SOURCE or source.startswith(API_SOURCE + ":")


def public_url(url: str) -> str:
    """A URL without user:password, safe to print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact(text: str, key: str = "") -> str:
    """Text with the API key, and anything that looks like a key, replaced by ***."""
    if key:
        text = text.replace(key, "***")
    return _SECRET_PATTERN.sub(lambda m: m.group(1) + "-***", text)


@dataclass(frozen=True)
class ApiConfig:
    """Where the server is, which model, and how hard to try."""

    base_url: str
    model: str
    api_key: str = field(default="", repr=False)
    timeout: float = 120.0  # one HTTP request
    max_retries: int = 4  # retries after the first try
    max_seconds: float = 300.0  # every try of one call together, waits included
    backoff: float = 1.0  # first wait between tries; doubles each time
    parallel: int = 8  # concurrent requests when a server ignores `n`

    def describe(self) -> str:
        """The model and server, without credentials."""
        return f"{self.model} at {public_url(self.base_url)}"

    @classmethod
    def for_source(
        cls,
        source: str,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str = "",
        key_env: str | None = None,
        **tries: float,
    ) -> ApiConfig:
        """The server, model and key as the wiring passes them (Settings, the command line, a preset).

        `key_env` names the variable the key came from (a preset's `api_key_env`): it must then be
        set. `tries` sets timeout, max_retries, max_seconds, backoff and parallel (the W2S_API_*
        settings); the key itself is never taken from a preset.
        """
        base = (base_url or DEFAULT_BASE_URL).rstrip("/")
        fixed = source.split(":", 1)[1] if ":" in source else ""
        name = model or fixed
        if not name:
            raise ValueError(
                "the API strong model needs a model name: pass --api-model NAME or set W2S_API_MODEL"
            )
        if key_env and not api_key:
            raise ValueError(f"api_key_env names {key_env}, which is not set in the environment")
        if not api_key and urlsplit(base).hostname == "api.openai.com":
            raise ValueError("OpenAI needs an API key: set OPENAI_API_KEY in the environment")
        values = {**tries, "max_retries": int(tries.get("max_retries", cls.max_retries))}
        values["parallel"] = max(1, int(tries.get("parallel", cls.parallel)))
        return cls(base_url=base, model=name, api_key=api_key, **values)
