"""A judge model on any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama, ...).

Requests go through the project's API client (backends/openai_api.py, api_http.py): bounded retries of
timeouts, connection errors, 429 and 5xx, Retry-After honoured, the key kept out of every message.
The reply is asked for as JSON; where the server can enforce a JSON schema it is asked to, so even
a small model answers in a readable form. Servers spell that differently, so `connect` probes once,
without retries: OpenAI's `json_schema`, then `json_object` with a `schema` (llama-cpp-python's
server), then plain text. The probe also turns an unreachable server, a refused key or a wrong URL
into one clear error before any work starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..backends.api_config import ApiConfig, public_url, redact
from ..backends.api_http import Usage
from ..backends.openai_api import ApiClient
from ..config import OPENAI_API_KEY, read_key
from .prompt import VERDICT_SCHEMA
from .protocol import Reply

RESPONSE_FORMATS = ("auto", "json_schema", "json_object", "none")
PROBE_MESSAGE = 'Reply with this JSON object: {"reason": "ready", "verdict": "tie"}'


class JudgeSetupError(ValueError):
    """The judge cannot start (server, key, model, options); the message is safe to show."""


def response_format_body(mode: str) -> dict[str, Any] | None:
    """The `response_format` request field of a mode (None for plain text)."""
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA, "strict": True},
        }
    if mode == "json_object":
        # A length cap keeps a small model from rambling until max_tokens cuts the JSON.
        schema = {**VERDICT_SCHEMA, "properties": {**VERDICT_SCHEMA["properties"]}}
        schema["properties"]["reason"] = {"type": "string", "maxLength": 300}
        return {"type": "json_object", "schema": schema}
    return None


class _ChatClient(ApiClient):
    """The API client with one more call: a chat request with extra body fields (response_format)."""

    def ask_chat(self, messages: list[dict[str, str]], seed: int, opts: dict[str, Any]) -> tuple[str, Usage]:
        """One reply's text and usage, retried like sampling."""
        choices, usage = self._sample("chat", [messages], [seed], opts)
        return choices[0].text, usage


@dataclass
class OpenAIJudge:
    """A judge model behind an OpenAI-compatible chat endpoint."""

    config: ApiConfig
    max_tokens: int = 256
    temperature: float = 0.0
    response_format: str = "auto"
    seed: int = 0
    _client: _ChatClient | None = field(default=None, repr=False)

    @property
    def model(self) -> str:
        """The model name on the server (the judge's voter id is judge:<model>)."""
        return self.config.model

    def describe(self) -> str:
        """Model and server, without credentials."""
        return f"{self.config.model} at {public_url(self.config.base_url)}"

    def connect(self, probe_timeout: float = 120.0) -> str:
        """Check the server once and settle the response format; returns it. JudgeSetupError if unusable."""
        if self.response_format not in RESPONSE_FORMATS:
            raise JudgeSetupError(f"response format must be one of {', '.join(RESPONSE_FORMATS)}")
        modes = (
            ["json_schema", "json_object", "none"]
            if self.response_format == "auto"
            else [self.response_format]
        )
        last = ""
        for mode in modes:
            ok, last = self._probe(mode, min(probe_timeout, self.config.timeout))
            if ok:
                self.response_format = mode
                break
        else:
            raise JudgeSetupError(f"{self.describe()} refused a judge request: {last}")
        if self._client is None:
            self._client = _ChatClient(self.config)
        return self.response_format

    def _probe(self, mode: str, timeout: float) -> tuple[bool, str]:
        """One request without retries: (accepted, why not). Setup errors that no format fixes raise."""
        import openai

        raw = openai.OpenAI(
            base_url=self.config.base_url,
            api_key=self.config.api_key or "none",
            max_retries=0,
            timeout=timeout,
        )
        body: dict[str, Any] = {"max_tokens": 1, "temperature": 0.0}
        if (fmt := response_format_body(mode)) is not None:
            body["response_format"] = fmt
        try:
            raw.chat.completions.create(
                model=self.config.model, messages=[{"role": "user", "content": PROBE_MESSAGE}], **body
            )
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise JudgeSetupError(
                f"cannot reach the judge server at {public_url(self.config.base_url)}: {self._safe(exc)}"
            ) from None
        except openai.APIStatusError as exc:
            message = f"HTTP {exc.status_code}: {self._safe(exc)}"
            if exc.status_code in (401, 403):
                raise JudgeSetupError(
                    f"{self.describe()} refused the key ({message}); set the variable named by --judge-key-env"
                ) from None
            if exc.status_code == 404:
                raise JudgeSetupError(
                    f"{self.describe()}: {message} (check --judge-base, which usually ends in /v1, "
                    "and --judge-model)"
                ) from None
            return False, message
        finally:
            raw.close()
        return True, ""

    def _safe(self, exc: BaseException) -> str:
        """An error's text on one line, shortened, with the key redacted."""
        inner: BaseException = exc
        while inner.__cause__ is not None:
            inner = inner.__cause__
        text = str(getattr(exc, "message", "") or inner or type(exc).__name__)
        return redact(" ".join(text.split())[:200], self.config.api_key)

    def ask(self, messages: list[dict[str, str]]) -> Reply:
        """One reply (ApiError after the retries are spent)."""
        if self._client is None:
            self.connect()
        assert self._client is not None
        opts: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        if (fmt := response_format_body(self.response_format)) is not None:
            opts["response_format"] = fmt
        started = time.monotonic()
        text, usage = self._client.ask_chat(messages, self.seed, opts)
        return Reply(text, usage.prompt_tokens, usage.completion_tokens, time.monotonic() - started)

    def close(self) -> None:
        """Release the client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None


def make_judge(
    base_url: str | None,
    model: str,
    key_env: str = OPENAI_API_KEY,
    max_tokens: int = 256,
    response_format: str = "auto",
    timeout: float = 120.0,
) -> OpenAIJudge:
    """A judge checked against its server (JudgeSetupError, safe to show, when it cannot work).

    The caller passes `base_url` (its own, else Settings.api_base: OPENAI_BASE_URL); the key is read
    from the variable `key_env` now, and lives only in the client, never in the database or a message.
    """
    base = (base_url or "").strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JudgeSetupError(
            f"--judge-base must be an http(s) URL such as http://127.0.0.1:8080/v1, got {base!r}"
        )
    model = (model or "").strip()
    if not model or len(model) > 180 or any(c.isspace() or not c.isprintable() for c in model):
        raise JudgeSetupError("--judge-model must be a model name without spaces, at most 180 characters")
    key = read_key(key_env) if key_env else ""
    if not key and parts.hostname == "api.openai.com":
        raise JudgeSetupError(f"OpenAI needs a key: set {key_env}")
    # The whole of one request, retries and waits included, is bounded (backends/api_http.py).
    config = ApiConfig(
        base_url=base, model=model, api_key=key, timeout=timeout, max_seconds=max(300.0, 3 * timeout)
    )
    judge = OpenAIJudge(config, max_tokens=max_tokens, response_format=response_format)
    judge.connect()
    return judge
