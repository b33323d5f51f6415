"""One HTTP request to an OpenAI-compatible server, retried until it succeeds or its budget is spent.

Requests go through the official `openai` package with its own retries off: this module bounds the
total time of a call and honours `Retry-After`. Timeouts, connection errors, 429 and 5xx are retried
with exponential backoff; a server that refuses `seed`, `min_tokens` or `n` is remembered
(api_registry.ServerInfo) and asked again without; other errors fail at once with a clear message,
the key redacted.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .api_config import ApiConfig, public_url, redact
from .api_registry import ServerInfo

log = logging.getLogger(__name__)


@dataclass
class Usage:
    """What calls cost: HTTP requests sent (retries included) and the tokens the server reported."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> None:
        """Accumulate another usage into this one."""
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


class ApiError(RuntimeError):
    """A remote call failed; the message says which server, what happened and is safe to show."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or Usage()  # what the failed call still cost


class ChatOnlyError(ApiError):
    """The model is served through the chat endpoint only."""


@dataclass(frozen=True)
class HttpJob:
    """One HTTP request: n continuations of one prompt (or message list) with one seed."""

    endpoint: str  # "completions" or "chat"
    prompt: Any
    n: int
    seed: int


class ApiHttp:
    """Sends requests to one server for one model, each retried with backoff within its time budget."""

    def __init__(
        self, config: ApiConfig, server: ServerInfo, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        import openai

        self.config = config
        self.server = server
        self._sleep = sleep
        # Our own retry loop bounds the total time, so the library's retries are off.
        self._openai = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "none",  # local servers need no key; the library wants one
            max_retries=0,
            timeout=config.timeout,
        )

    def close(self) -> None:
        """Close the connections."""
        self._openai.close()

    def send(self, job: HttpJob, opts: dict[str, Any]) -> tuple[Any, Usage, HttpJob]:
        """Send one request until it succeeds or the retry budget is spent; the reply and the final job."""
        cfg = self.config
        usage = Usage()
        start = time.monotonic()
        deadline = start + cfg.max_seconds
        tries = 0
        while True:
            body = self._body(job, opts)
            remaining = deadline - time.monotonic()
            tries += 1
            usage.calls += 1
            try:
                reply = self._send(job, body, timeout=max(0.1, min(cfg.timeout, remaining)))
            except _Retryable as exc:
                wait = max(exc.retry_after or 0.0, cfg.backoff * 2 ** (tries - 1) * random.uniform(0.8, 1.2))
                left = deadline - time.monotonic()
                if tries > cfg.max_retries or wait >= left:
                    raise ApiError(
                        f"{self.config.describe()}: gave up after {tries} tries in "
                        f"{time.monotonic() - start:.1f} s: {exc}"
                        + (f" (the server asked to wait {exc.retry_after:g} s)" if exc.retry_after else ""),
                        usage,
                    ) from None
                log.warning(
                    "%s: %s; retry %d/%d in %.1f s", self.config.describe(), exc, tries, cfg.max_retries, wait
                )
                self._sleep(wait)
                continue
            except _Rejected as exc:
                if exc.param == "min_tokens" and "extra_body" in body:
                    self.server.accepts_min_tokens = False
                    log.info("server %s rejects min_tokens; sampling without", public_url(cfg.base_url))
                    continue
                if exc.param == "seed" and "seed" in body:
                    self.server.accepts_seed = False
                    log.info("server %s rejects seed; sampling without", public_url(cfg.base_url))
                    continue
                if exc.param == "n" and body.get("n", 1) > 1:
                    self.server.honours_n = False
                    # The caller fans out the choices this request no longer asks for.
                    job = HttpJob(job.endpoint, job.prompt, 1, job.seed)
                    continue
                if exc.chat_only:
                    self.server.chat_only.add(cfg.model)
                    raise ChatOnlyError(f"{self.config.describe()}: {exc}", usage) from None
                raise ApiError(f"{self.config.describe()}: {exc}", usage) from None
            return reply, usage, job

    def _body(self, job: HttpJob, opts: dict[str, Any]) -> dict[str, Any]:
        """The request body: the options, plus n, seed and min_tokens where this server takes them."""
        body = dict(opts)
        min_tokens = body.pop("min_tokens", 0)
        if min_tokens and self.server.accepts_min_tokens:
            body["extra_body"] = {"min_tokens": min_tokens}  # not an OpenAI field: the client passes it on
        if job.n > 1:
            body["n"] = job.n
        if self.server.accepts_seed:
            body["seed"] = job.seed
        return body

    def _send(self, job: HttpJob, body: dict[str, Any], timeout: float) -> Any:
        """One HTTP request; transport and status errors become _Retryable or _Rejected."""
        import openai

        try:
            if job.endpoint == "chat":
                return self._openai.chat.completions.create(
                    model=self.config.model, messages=job.prompt, timeout=timeout, **body
                )
            return self._openai.completions.create(
                model=self.config.model, prompt=job.prompt, timeout=timeout, **body
            )
        except openai.APITimeoutError:
            raise _Retryable(f"no reply within {timeout:.1f} s") from None
        except openai.APIConnectionError as exc:
            raise _Retryable(f"cannot connect: {redact(_cause(exc), self.config.api_key)}") from None
        except openai.APIStatusError as exc:
            status = exc.status_code
            message = redact(_status_message(exc), self.config.api_key)
            if status == 429 or status >= 500 or status in (408, 409):
                raise _Retryable(f"HTTP {status}: {message}", _retry_after(exc.response)) from None
            raise _Rejected(status, message, job.endpoint) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            # The body was not JSON (cut off, or HTML from a proxy): a broken server, not a blip.
            raise ApiError(
                f"{self.config.describe()}: malformed reply (not valid JSON: {redact(str(exc), self.config.api_key)})"
            ) from None


class _Retryable(Exception):
    """A failure worth another try (timeout, connection, 429, 5xx)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Rejected(Exception):
    """The server refused the request (4xx other than 408/409/429)."""

    def __init__(self, status: int, message: str, endpoint: str) -> None:
        low = message.lower()
        self.param = (
            "min_tokens" if "min_tokens" in low else "seed" if "seed" in low
            else "n" if re.search(r"\bn\b", low) else None
        )  # fmt: skip
        self.chat_only = endpoint == "completions" and (
            "chat model" in low or "chat/completions" in low or (status == 404 and "completions" in low)
        )
        hint = ""
        if status == 401:
            hint = " (check OPENAI_API_KEY)"
        elif status == 404 and not self.chat_only:
            hint = " (check --api-base, which usually ends in /v1, and --api-model)"
        super().__init__(f"HTTP {status}: {message}{hint}")


def _retry_after(response: Any) -> float | None:
    """Seconds from Retry-After (seconds or an HTTP date) or retry-after-ms, if the server sent one."""
    headers = getattr(response, "headers", None) or {}
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _status_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        msg = inner.get("message") if isinstance(inner, dict) else inner
        if msg:
            return " ".join(str(msg).split())[:300]
    return " ".join(str(getattr(exc, "message", exc)).split())[:300]


def _cause(exc: BaseException) -> str:
    """The innermost reason of a connection error, on one line."""
    inner = exc
    while inner.__cause__ is not None or inner.__context__ is not None:
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    text = str(inner) or type(inner).__name__
    return " ".join(text.split())[:200]
