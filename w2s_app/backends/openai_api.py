"""A model behind any OpenAI-compatible server (OpenAI, vLLM, TGI, llama.cpp, Ollama): the sampling client.

The client samples through the completions endpoint (or the chat endpoint for chat-only models):
equal prompts go as one n>1 request where the server honours `n` (probed once per server), else
fan out over a thread pool; replies are checked and their token counts split per choice. Each
request is sent and retried by `api_http`; the configuration is `api_config.ApiConfig`; the strong
role over this client is `roles.ApiRole`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .api_config import ApiConfig, public_url
from .api_http import ApiError, ApiHttp, HttpJob, Usage
from .api_registry import server_info

log = logging.getLogger(__name__)

# OpenAI accepts at most 4 stop sequences; the rest are cut locally by the engine.
MAX_STOP = 4


@dataclass
class Choice:
    """One sampled continuation: its text, why it ended, and how many tokens it took."""

    text: str
    finish_reason: str | None
    tokens: int


class ApiClient:
    """Samples continuations from one model on one server, with retries and capability probing."""

    def __init__(self, config: ApiConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.server = server_info(config.base_url)
        self.http = ApiHttp(config, self.server, sleep)
        self._pool = ThreadPoolExecutor(max_workers=config.parallel, thread_name_prefix="w2s-api")

    def __repr__(self) -> str:
        return f"ApiClient({self.describe()})"

    def describe(self) -> str:
        """The model and server, without credentials."""
        return self.config.describe()

    def close(self) -> None:
        """Stop the worker threads and close connections."""
        self._pool.shutdown(wait=False)
        self.http.close()

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
                    choices, used = self._call(HttpJob(endpoint, prompts[start], n, seeds[start]), opts)
                    usage.add(used)
                    self.server.honours_n = len(choices) >= n
                    log.info(
                        "server %s honours n: %s", public_url(self.config.base_url), self.server.honours_n
                    )
                    for j, c in enumerate(choices[: n if self.server.honours_n else 1]):
                        out[start + j] = c
        # Two rounds: if a server turns out to drop `n`, the first round leaves gaps to fan out.
        for _ in range(2):
            jobs: list[tuple[int, HttpJob]] = []
            for start, n in groups:
                todo = [i for i in range(start, start + n) if out[i] is None]
                if self.server.honours_n and len(todo) > 1:
                    jobs.append((todo[0], HttpJob(endpoint, prompts[todo[0]], len(todo), seeds[todo[0]])))
                else:
                    jobs += [(i, HttpJob(endpoint, prompts[i], 1, seeds[i])) for i in todo]
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

    def _call(self, job: HttpJob, opts: dict[str, Any]) -> tuple[list[Choice], Usage]:
        """One request with retries; returns its choices (sorted by index) and usage."""
        reply, usage, job = self.http.send(job, opts)
        return self._parse(job, reply, opts, usage), usage

    def raw_completion(self, prompt: str, opts: dict[str, Any]) -> tuple[Any, Usage]:
        """One completions request with `opts` as the body, retried like sampling; the reply unparsed."""
        reply, usage, _ = self.http.send(HttpJob("completions", prompt, 1, 0), opts)
        return reply, usage

    def _parse(self, job: HttpJob, reply: Any, opts: dict[str, Any], usage: Usage) -> list[Choice]:
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


def _snippet(reply: Any) -> str:
    try:
        text = json.dumps(reply.model_dump(), default=str)
    except Exception:
        text = repr(reply)
    return text[:160]
