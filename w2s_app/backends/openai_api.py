"""A strong model behind any OpenAI-compatible server (OpenAI, vLLM, TGI, llama.cpp, Ollama).

The client samples through the completions endpoint (or the chat endpoint for chat-only models)
with the official `openai` package. It does its own retries, because it must bound the total time
of a call and honour `Retry-After`: timeouts, connection errors, 429 and 5xx are retried with
exponential backoff; other errors and malformed replies fail at once with a clear message. Servers
differ in what they accept (llama.cpp ignores `n`, some reject `seed`), so each server is probed
once and the answer remembered for the life of the process.

The API key lives only in the client object: never in a repr, a log line or an error message.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

API_SOURCE = "api"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
# OpenAI accepts at most 4 stop sequences; the rest are cut locally by the engine.
MAX_STOP = 4
_SECRET_PATTERN = re.compile(r"\b(sk|key|tok)-[A-Za-z0-9*_\-]{4,}")


class ApiError(RuntimeError):
    """A remote call failed; the message says which server, what happened and is safe to show."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or Usage()  # what the failed call still cost


class ChatOnlyError(ApiError):
    """The model is served through the chat endpoint only."""


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

    @classmethod
    def from_env(
        cls,
        source: str,
        base_url: str | None = None,
        model: str | None = None,
        env: dict[str, str] | None = None,
        key_env: str | None = None,
    ) -> ApiConfig:
        """Settings from arguments, then OPENAI_BASE_URL / W2S_API_MODEL / OPENAI_API_KEY / W2S_API_*.

        `key_env` names the environment variable that holds the key (a preset's `api_key_env`);
        it must then be set. The key itself is never taken from a preset.
        """
        env = dict(os.environ if env is None else env)
        base = (base_url or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        fixed = source.split(":", 1)[1] if ":" in source else ""
        name = model or env.get("W2S_API_MODEL") or fixed
        if not name:
            raise ValueError(
                "the API strong model needs a model name: pass --api-model NAME or set W2S_API_MODEL"
            )
        if key_env and not env.get(key_env):
            raise ValueError(f"api_key_env names {key_env}, which is not set in the environment")
        key = env.get(key_env or "OPENAI_API_KEY", "")
        if not key and urlsplit(base).hostname == "api.openai.com":
            raise ValueError("OpenAI needs an API key: set OPENAI_API_KEY in the environment")

        def num(name: str, default: float) -> float:
            try:
                return float(env.get(name) or default)
            except ValueError as exc:
                raise ValueError(f"{name} must be a number, got {env[name]!r}") from exc

        return cls(
            base_url=base,
            model=name,
            api_key=key,
            timeout=num("W2S_API_TIMEOUT", cls.timeout),
            max_retries=int(num("W2S_API_RETRIES", cls.max_retries)),
            max_seconds=num("W2S_API_MAX_SECONDS", cls.max_seconds),
            backoff=num("W2S_API_BACKOFF", cls.backoff),
            parallel=max(1, int(num("W2S_API_PARALLEL", cls.parallel))),
        )


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


@dataclass
class Choice:
    """One sampled continuation: its text, why it ended, and how many tokens it took."""

    text: str
    finish_reason: str | None
    tokens: int


@dataclass
class ServerInfo:
    """What we learned about one server; None means not probed yet."""

    honours_n: bool | None = None
    accepts_seed: bool = True
    # `min_tokens` (llama.cpp's and vLLM's extension: no end of answer before that many tokens); a
    # server that refuses it is remembered and asked without.
    accepts_min_tokens: bool = True
    chat_only: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_SERVERS: dict[str, ServerInfo] = {}
_SERVERS_LOCK = threading.Lock()


def server_info(base_url: str) -> ServerInfo:
    """The remembered facts about a server (one record per base URL for the process)."""
    with _SERVERS_LOCK:
        return _SERVERS.setdefault(base_url, ServerInfo())


def forget_servers() -> None:
    """Forget every probed server (tests start from a clean slate)."""
    with _SERVERS_LOCK:
        _SERVERS.clear()


@dataclass(frozen=True)
class _HttpJob:
    """One HTTP request: n continuations of one prompt (or message list) with one seed."""

    endpoint: str  # "completions" or "chat"
    prompt: Any
    n: int
    seed: int


class ApiClient:
    """Samples continuations from one model on one server, with retries and capability probing."""

    def __init__(self, config: ApiConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        import openai

        self.config = config
        self.server = server_info(config.base_url)
        self._sleep = sleep
        # Our own retry loop bounds the total time, so the library's retries are off.
        self._openai = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "none",  # local servers need no key; the library wants one
            max_retries=0,
            timeout=config.timeout,
        )
        self._pool = ThreadPoolExecutor(max_workers=config.parallel, thread_name_prefix="w2s-api")

    def __repr__(self) -> str:
        return f"ApiClient({self.describe()})"

    def describe(self) -> str:
        """The model and server, without credentials."""
        return f"{self.config.model} at {public_url(self.config.base_url)}"

    def close(self) -> None:
        """Stop the worker threads and close connections."""
        self._pool.shutdown(wait=False)
        self._openai.close()

    def complete(
        self,
        prompts: list[str],
        seeds: list[int],
        max_tokens: int,
        temperature: float,
        top_p: float,
        stop: tuple[str, ...] = (),
        min_tokens: int = 0,
    ) -> tuple[list[Choice], Usage]:
        """One continuation per prompt through the completions endpoint, in input order.

        `min_tokens` asks the server not to end the answer before that many tokens (where it can).
        """
        opts = _options(max_tokens, temperature, top_p, stop, min_tokens)
        return self._sample("completions", list(prompts), seeds, opts)

    def chat(
        self,
        messages: list[dict[str, str]],
        seeds: list[int],
        max_tokens: int,
        temperature: float,
        top_p: float,
        stop: tuple[str, ...] = (),
        min_tokens: int = 0,
    ) -> tuple[list[Choice], Usage]:
        """len(seeds) whole answers to one conversation through the chat endpoint."""
        opts = _options(max_tokens, temperature, top_p, stop, min_tokens)
        return self._sample("chat", [messages] * len(seeds), seeds, opts)

    def _sample(
        self, endpoint: str, prompts: list[Any], seeds: list[int], opts: dict[str, Any]
    ) -> tuple[list[Choice], Usage]:
        """Group equal consecutive prompts into n>1 requests where the server honours n, else fan out."""
        if len(prompts) != len(seeds):
            raise ValueError("one seed per prompt")
        usage = Usage()
        groups: list[tuple[int, int]] = []  # (start, length) of runs of equal prompts
        for i, p in enumerate(prompts):
            if groups and prompts[groups[-1][0]] == p:
                groups[-1] = (groups[-1][0], groups[-1][1] + 1)
            else:
                groups.append((i, 1))
        out: list[Choice | None] = [None] * len(prompts)
        if self.server.honours_n is None and any(n > 1 for _, n in groups):
            # Probe once per server: send one n>1 request and see how many choices come back.
            with self.server.lock:
                if self.server.honours_n is None:
                    start, n = next(g for g in groups if g[1] > 1)
                    choices, used = self._call(_HttpJob(endpoint, prompts[start], n, seeds[start]), opts)
                    usage.add(used)
                    self.server.honours_n = len(choices) >= n
                    log.info(
                        "server %s honours n: %s", public_url(self.config.base_url), self.server.honours_n
                    )
                    for j, c in enumerate(choices[: n if self.server.honours_n else 1]):
                        out[start + j] = c
        # Two rounds: if a server turns out to drop `n`, the first round leaves gaps to fan out.
        for _ in range(2):
            jobs: list[tuple[int, _HttpJob]] = []
            for start, n in groups:
                todo = [i for i in range(start, start + n) if out[i] is None]
                if self.server.honours_n and len(todo) > 1:
                    jobs.append((todo[0], _HttpJob(endpoint, prompts[todo[0]], len(todo), seeds[todo[0]])))
                else:
                    jobs += [(i, _HttpJob(endpoint, prompts[i], 1, seeds[i])) for i in todo]
            if not jobs:
                break
            futures = [(i, self._pool.submit(self._call, job, opts)) for i, job in jobs]
            errors: list[ApiError] = []
            for i, fut in futures:
                try:
                    choices, used = fut.result()
                except ApiError as exc:
                    usage.add(exc.usage)
                    errors.append(exc)
                    continue
                usage.add(used)
                for j, c in enumerate(choices):
                    out[i + j] = c
            if errors:
                # Every request has finished, so the usage of the whole call is known and counted.
                raise type(errors[0])(str(errors[0]), usage)
        if any(c is None for c in out):
            raise ApiError(f"{self.describe()}: the server returned fewer choices than asked for", usage)
        return [c for c in out if c is not None], usage

    def _call(self, job: _HttpJob, opts: dict[str, Any]) -> tuple[list[Choice], Usage]:
        """One request with retries; returns its choices (sorted by index) and usage."""
        reply, usage, job = self._retrying(job, opts)
        return self._parse(job, reply, opts, usage), usage

    def raw_completion(self, prompt: str, opts: dict[str, Any]) -> tuple[Any, Usage]:
        """One completions request with `opts` as the body, retried like sampling; the reply unparsed."""
        reply, usage, _ = self._retrying(_HttpJob("completions", prompt, 1, 0), opts)
        return reply, usage

    def _retrying(self, job: _HttpJob, opts: dict[str, Any]) -> tuple[Any, Usage, _HttpJob]:
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
                        f"{self.describe()}: gave up after {tries} tries in "
                        f"{time.monotonic() - start:.1f} s: {exc}"
                        + (f" (the server asked to wait {exc.retry_after:g} s)" if exc.retry_after else ""),
                        usage,
                    ) from None
                log.warning(
                    "%s: %s; retry %d/%d in %.1f s", self.describe(), exc, tries, cfg.max_retries, wait
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
                    job = _HttpJob(job.endpoint, job.prompt, 1, job.seed)
                    continue
                if exc.chat_only:
                    self.server.chat_only.add(cfg.model)
                    raise ChatOnlyError(f"{self.describe()}: {exc}", usage) from None
                raise ApiError(f"{self.describe()}: {exc}", usage) from None
            return reply, usage, job

    def _body(self, job: _HttpJob, opts: dict[str, Any]) -> dict[str, Any]:
        body = dict(opts)
        min_tokens = body.pop("min_tokens", 0)
        if min_tokens and self.server.accepts_min_tokens:
            body["extra_body"] = {"min_tokens": min_tokens}  # not an OpenAI field: the client passes it on
        if job.n > 1:
            body["n"] = job.n
        if self.server.accepts_seed:
            body["seed"] = job.seed
        return body

    def _send(self, job: _HttpJob, body: dict[str, Any], timeout: float) -> Any:
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
                f"{self.describe()}: malformed reply (not valid JSON: {redact(str(exc), self.config.api_key)})"
            ) from None

    def _parse(self, job: _HttpJob, reply: Any, opts: dict[str, Any], usage: Usage) -> list[Choice]:
        """Choices of a reply, checked; token counts from usage, else from finish reasons."""
        choices = getattr(reply, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise ApiError(f"{self.describe()}: malformed reply: no choices in {_snippet(reply)}")
        # Fewer choices than n is a server that ignores n (the caller fans out the rest); more is broken.
        if len(choices) > job.n:
            raise ApiError(
                f"{self.describe()}: malformed reply: asked for {job.n} choices, got {len(choices)}"
            )
        texts = []
        for c in sorted(choices, key=lambda c: getattr(c, "index", 0) or 0):
            text = c.message.content if job.endpoint == "chat" else c.text
            if not isinstance(text, str):
                if job.endpoint == "chat" and text is None:
                    text = ""  # a refusal or tool call leaves no content
                else:
                    raise ApiError(
                        f"{self.describe()}: malformed reply: choice text is {type(text).__name__}"
                    )
            texts.append((text, getattr(c, "finish_reason", None)))
        used = getattr(reply, "usage", None)
        prompt_tokens = getattr(used, "prompt_tokens", None)
        completion = getattr(used, "completion_tokens", None)
        usage.prompt_tokens += int(prompt_tokens or 0)
        max_tokens = int(opts["max_tokens"])
        if isinstance(completion, int):
            usage.completion_tokens += completion
            tokens = _split_tokens(texts, completion, max_tokens)
        else:
            # No usage (some servers omit it): a 'length' choice used max_tokens, others about 4 chars/token.
            tokens = [
                max_tokens if fr == "length" else max(1, min(max_tokens, len(t) // 4)) for t, fr in texts
            ]
            usage.completion_tokens += sum(tokens)
        return [Choice(t, fr, n) for (t, fr), n in zip(texts, tokens)]


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


def _options(
    max_tokens: int, temperature: float, top_p: float, stop: tuple[str, ...], min_tokens: int = 0
) -> dict[str, Any]:
    opts: dict[str, Any] = {"max_tokens": int(max_tokens), "temperature": float(temperature)}
    if min_tokens:
        opts["min_tokens"] = int(min(min_tokens, max_tokens))
    if top_p < 1.0:
        opts["top_p"] = float(top_p)
    if stop:
        opts["stop"] = list(stop[:MAX_STOP])
    return opts


def _split_tokens(texts: list[tuple[str, str | None]], total: int, max_tokens: int) -> list[int]:
    """Per-choice token counts from the reply's total: 'length' choices used max_tokens exactly."""
    if len(texts) == 1:
        return [total]
    counts = [max_tokens if fr == "length" else 0 for _, fr in texts]
    rest = max(0, total - sum(counts))
    others = [i for i, (_, fr) in enumerate(texts) if fr != "length"]
    chars = sum(len(texts[i][0]) for i in others) or 1
    for i in others:
        counts[i] = max(1, min(max_tokens, round(rest * len(texts[i][0]) / chars)))
    return counts


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


def _snippet(reply: Any) -> str:
    try:
        text = json.dumps(reply.model_dump(), default=str)
    except Exception:
        text = repr(reply)
    return text[:160]


def redact(text: str, key: str = "") -> str:
    """Text with the API key, and anything that looks like a key, replaced by ***."""
    if key:
        text = text.replace(key, "***")
    return _SECRET_PATTERN.sub(lambda m: m.group(1) + "-***", text)


@dataclass
class ApiRole:
    """The strong role when the model is remote: the preset's spec plus the client that reaches it."""

    spec: Any  # RoleSpec; its template "chat" means the server applies its own chat template
    client: ApiClient

    @property
    def chat(self) -> bool:
        """True when the model is used through the chat endpoint (configured or detected)."""
        return self.spec.template == "chat" or self.client.config.model in self.client.server.chat_only

    def prompt_text(self, prompt: str) -> str:
        """The completions prompt: the role's plain template applied to the user prompt."""
        return self.spec.template.replace("{prompt}", prompt)

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """The chat messages: optional system message, then the user prompt."""
        out = [{"role": "user", "content": prompt}]
        if self.spec.system:
            out.insert(0, {"role": "system", "content": self.spec.system})
        return out

    def describe(self) -> str:
        """The model and server, without credentials."""
        return self.client.describe()

    @property
    def context_limit(self) -> int | None:
        """Unknown here: the server reports its own limit."""
        return None

    def count_tokens(self, prompt: str, text: str) -> tuple[int, int] | None:
        """Unknown here: the server reports the tokens it read and wrote."""
        return None


_CLIENTS: dict[ApiConfig, ApiClient] = {}
_CLIENTS_LOCK = threading.Lock()


def shared_client(config: ApiConfig) -> ApiClient:
    """One client per configuration for the process (roles on the same server share it)."""
    with _CLIENTS_LOCK:
        if config not in _CLIENTS:
            _CLIENTS[config] = ApiClient(config)
        return _CLIENTS[config]


def api_role(spec: Any, base_url: str | None = None, model: str | None = None) -> ApiRole:
    """The strong role for an 'api' source; the preset's api_base, model and api_key_env apply when
    neither the command line nor the environment names a server or model."""
    base = base_url or getattr(spec, "api_base", None)
    name = model or getattr(spec, "model", None)
    config = ApiConfig.from_env(spec.source, base, name, key_env=getattr(spec, "api_key_env", None))
    return ApiRole(spec, shared_client(config))
