"""A guide (tuned or untuned) behind an OpenAI-compatible server, scored from prompt log-probabilities.

The score of a response text y for a role is log G(y | T(x)): the sum of the guide's
log-probabilities of the response tokens given the role's templated prompt T(x). One request per
(guide, response): POST /v1/completions with prompt = T(x) + y (+ the EOS text for a finished
answer), echo=true, logprobs=0, max_tokens=1, temperature=0. The server tokenizes the text itself,
so the response tokens are the server's own; llama.cpp (`python -m llama_cpp.server`, which needs
`--logits_all true`) and vLLM both answer this request.

Boundary rule. The echoed token list is split by position, not by re-tokenizing:
1. The last `usage.completion_tokens` entries are the token the request generated; they are dropped.
   The echoed text must start with the text we sent, and when the generated text is not empty the
   dropped token's text must equal it (otherwise the list is misaligned: see llama.cpp below).
2. Offsets are the server's `text_offset`s. The response ends where the echoed prompt ends (the
   offset of the generated token) or, for a finished answer, at the offset of the EOS token. It
   starts `len(y)` characters earlier: positions are counted back from the end, so a server whose
   offsets skip special tokens of the template (llama.cpp) or add a BOS text (vLLM) agrees.
3. A token belongs to the response when it ends after that start. A token that straddles the
   boundary (part template, part response: "Answer: " + "Paris" read as ":" + " Paris") therefore
   counts as response, so every character of y is scored; its probability is conditioned on the
   template without its last characters. Local scoring tokenizes template and response apart and
   never straddles, so the two differ there. A token with no text of its own sitting exactly at the
   start counts as response only when y begins with a non-ASCII character (it is then a byte of a
   character split over tokens; otherwise it is a special token ending the template).
4. The response tokens must spell y (compared on ASCII characters, since servers print partial
   UTF-8 bytes as nothing or as a replacement character); special-token text inside y, which the
   server would read as one token, fails here instead of shifting the boundary.
5. Empty y: score 0 and no request, unless the answer is finished; then only the EOS term.

EOS. A finished answer (EOS or stop string) also scores the guide's EOS token: the role's `eos`
text (required for a remote guide) is appended to the prompt. Both llama.cpp and vLLM read the
text of a special token in a completions prompt as that token; the last echoed prompt token must have the
EOS text or no text (llama.cpp prints special tokens as nothing), else the server split the text
into ordinary tokens and the request fails with a clear error. The echo carries token texts, not
ids, so the id itself cannot be checked here: the tests check it against the same model run locally.

llama.cpp (llama-cpp-python 0.3) reports echoed log-probabilities one position off when the
tokenized prompt does not start with the model's BOS token (the log-probability it lists for token
i is the next position's), drops the generated token from the list, and leaves out every later
token whose id is the BOS id. Start such a role's template with the BOS text (SmolLM2:
`<|im_start|>`): then the list is aligned. Two checks refuse a misaligned server instead of
scoring with it: rule 1 (the generated token must close the list), and a probe sent once per guide
before its first score: the server scores a counting sequence ("1, 2, ..., 6") under the role's
template. Aligned, the later numbers are near certain (mean log-probability of the last 8 tokens
-0.01 to -0.03 for SmolLM2-135M under a chat, a plain and a Q/A template); shifted by one, each is
scored as if it repeated itself (about -14). Below PROBE_FLOOR the guide is refused with a message
that says what to change. The probe is short because it is paid once per guide per process: on a
llama-cpp-python server each echoed token costs about 45 ms (it sorts the vocabulary per token),
and counting to 12 under a chat template took 53 tokens (3.0 s) where counting to 6 takes 31 (1.6 s).

Templates are plain text with {prompt}: `template = "chat"` needs the guide's tokenizer, which a
remote guide does not have, so it is refused; write the chat format out as text instead.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .api_config import ApiConfig
from .api_http import ApiError, Usage
from .api_registry import shared_client
from .openai_api import ApiClient

CHAT = "chat"
SCORE_OPTIONS = {"max_tokens": 1, "temperature": 0.0, "echo": True, "logprobs": 0}
PROBE_PROMPT = "Count from 1 to 6."
PROBE_ANSWER = "1, 2, 3, 4, 5, 6"
PROBE_TAIL = 8  # echoed tokens at the end of the probe whose mean log-probability is checked
PROBE_FLOOR = -3.0  # aligned: -0.01 to -0.03; shifted by one position: about -14
CACHE_SIZE = 4096  # scored (prompt, response, eos) per guide: carried beams are scored again each step
# A log-probability a little above 0 is rounding; anything more is not a log-probability.
_LOGPROB_SLACK = 1e-3


class RemoteGuideError(ApiError):
    """A guide server's reply cannot be turned into a score; the message says why."""


@dataclass(frozen=True)
class Echo:
    """The parts of an echo+logprobs reply that scoring needs, checked for shape."""

    text: str
    tokens: list[str]
    offsets: list[int]
    logprobs: list[float | None]
    completion_tokens: int


def parse_echo(reply: Any) -> Echo:
    """Check and unpack a completions reply with echoed prompt log-probabilities."""
    choices = getattr(reply, "choices", None)
    if not isinstance(choices, list) or len(choices) != 1:
        raise RemoteGuideError(f"malformed reply: expected one choice, got {_count(choices)}")
    choice = choices[0]
    lp = getattr(choice, "logprobs", None)
    if lp is None:
        raise RemoteGuideError(
            "the reply has no log-probabilities; the server must return prompt log-probabilities "
            "with echo (llama.cpp: start it with --logits_all true)"
        )
    tokens = getattr(lp, "tokens", None)
    offsets = getattr(lp, "text_offset", None)
    values = getattr(lp, "token_logprobs", None)
    if not (isinstance(tokens, list) and isinstance(offsets, list) and isinstance(values, list)):
        raise RemoteGuideError("malformed reply: logprobs lacks tokens, text_offset or token_logprobs")
    if not (len(tokens) == len(offsets) == len(values)) or not tokens:
        raise RemoteGuideError(
            f"malformed reply: {len(tokens)} tokens, {len(offsets)} offsets, {len(values)} log-probabilities"
        )
    if not all(isinstance(t, str) for t in tokens):
        raise RemoteGuideError("malformed reply: a token is not text")
    if not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets):
        raise RemoteGuideError("malformed reply: a text offset is not an integer")
    if any(b < a for a, b in itertools.pairwise(offsets)):
        raise RemoteGuideError("malformed reply: text offsets go backwards")
    for v in values:
        if v is None:
            continue
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not math.isfinite(v)
            or v > _LOGPROB_SLACK
        ):
            raise RemoteGuideError(f"malformed reply: {v!r} is not a log-probability")
    text = getattr(choice, "text", None)
    if not isinstance(text, str):
        raise RemoteGuideError("malformed reply: the choice has no text")
    completion = getattr(getattr(reply, "usage", None), "completion_tokens", None)
    if not isinstance(completion, int) or completion < 0 or completion >= len(tokens):
        raise RemoteGuideError(f"malformed reply: usage.completion_tokens is {completion!r}")
    return Echo(text, list(tokens), list(offsets), list(values), completion)


def response_logprob(echo: Echo, sent: str, response: str, eos_text: str | None) -> tuple[float, int]:
    """log G(response | template) from an echo of `sent` (= template + response [+ eos_text]), and
    how many guide tokens that sums (EOS included); see the module docstring for the rule."""
    if not echo.text.startswith(sent):
        raise RemoteGuideError("the server did not echo the prompt it was sent (echo unsupported?)")
    generated = echo.text[len(sent) :]
    k = len(echo.tokens) - echo.completion_tokens  # echoed prompt tokens
    if echo.completion_tokens and generated and echo.tokens[k] != generated:
        raise RemoteGuideError(
            "the server's echoed log-probabilities are misaligned with its tokens (llama-cpp-python "
            "shifts them by one when the prompt does not start with the model's BOS token): start "
            "the role's template with the BOS text, e.g. <|im_start|> for SmolLM2"
        )
    offsets = echo.offsets
    end_all = offsets[k] if echo.completion_tokens else offsets[k - 1] + len(echo.tokens[k - 1])
    ends = offsets[1:k] + [end_all]
    body = k
    total = 0.0
    scored = 0
    y_end = end_all
    if eos_text is not None:
        body = k - 1
        if body < 0 or echo.tokens[body] not in ("", eos_text):
            raise RemoteGuideError(
                f"the server did not read the EOS text {eos_text!r} as one token (it does not parse "
                "special tokens in prompts, or 'eos' is not this model's EOS token)"
            )
        y_end = offsets[body]
        total += _value(echo, body, "the EOS token")
        scored += 1
    start = y_end - len(response)
    split_char = bool(response) and not response[0].isascii()
    first = body
    for i in range(body):
        if ends[i] > start or (split_char and ends[i] == offsets[i] == start):
            first = i
            break
    if response and first == body:
        raise RemoteGuideError("the server's tokens do not cover the response")
    spelled = "".join(echo.tokens[first:body])
    if not _ascii(spelled).endswith(_ascii(response)):
        raise RemoteGuideError(
            "the server's response tokens do not spell the response (special-token text in the "
            "answer, or offsets that do not count characters)"
        )
    for i in range(first, body):
        total += _value(echo, i, "a response token")
        scored += 1
    return total, scored


def _value(echo: Echo, i: int, what: str) -> float:
    v = echo.logprobs[i]
    if v is None:
        raise RemoteGuideError(
            f"the server gave no log-probability for {what} (the template must put at least one "
            "token before the response)"
        )
    return float(v)


def _ascii(text: str) -> str:
    return "".join(c for c in text if c.isascii())


def _count(choices: Any) -> str:
    return str(len(choices)) if isinstance(choices, list) else "none"


class RemoteGuide:
    """One guide role on a server: its plain template, its EOS text and the client that reaches it."""

    def __init__(self, spec: Any, client: ApiClient, name: str = "guide") -> None:
        if spec.template == CHAT:
            raise ValueError(
                f"{name}: template 'chat' needs the guide's tokenizer, which a remote guide does not "
                "have; write the chat format out as plain text with {prompt}"
            )
        if "{prompt}" not in spec.template:
            raise ValueError(f"{name}: a remote guide's template needs {{prompt}}")
        if not spec.eos:
            raise ValueError(f"{name}: a remote guide needs 'eos' (its EOS token text, e.g. '</s>')")
        if spec.adapter:
            raise ValueError(f"{name}: a remote guide cannot load an adapter; serve the adapted model")
        self.spec = spec
        self.client = client
        self.name = name
        self._cache: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._probed = False
        self._probe_lock = threading.Lock()

    @property
    def context_limit(self) -> int | None:
        """Unknown here: the server reports its own limit."""
        return None

    def describe(self) -> str:
        """The model and server, without credentials."""
        return self.client.describe()

    def prompt_text(self, prompt: str) -> str:
        """The templated prompt the response continues."""
        return self.spec.template.replace("{prompt}", prompt)

    def logprob(self, prompt: str, text: str, eos: bool) -> tuple[float, int, Usage]:
        """log G(text | T(prompt)) (+ the EOS term when eos), tokens scored, and what the call cost."""
        if not text and not eos:
            return 0.0, 0, Usage()
        template = self.prompt_text(prompt)
        sent = template + text + (self.spec.eos if eos else "")
        with self._lock:
            hit = self._cache.get(sent)
            if hit is not None:
                self._cache.move_to_end(sent)
                return hit[0], hit[1], Usage()
        usage = self._probe()
        echo, more = self._echo(sent)
        usage.add(more)
        try:
            value, n = response_logprob(echo, sent, text, self.spec.eos if eos else None)
        except RemoteGuideError as exc:
            raise RemoteGuideError(f"{self.name} {self.describe()}: {exc}", usage) from None
        with self._lock:
            self._cache[sent] = (value, n)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return value, n, usage

    def _echo(self, sent: str) -> tuple[Echo, Usage]:
        """One scoring request for `sent`, errors named after this guide."""
        try:
            reply, usage = self.client.raw_completion(sent, dict(SCORE_OPTIONS))
        except ApiError as exc:
            raise ApiError(f"{self.name} {exc}", exc.usage) from None
        try:
            return parse_echo(reply), usage
        except RemoteGuideError as exc:
            raise RemoteGuideError(f"{self.name} {self.describe()}: {exc}", usage) from None

    def _probe(self) -> Usage:
        """Once per guide: refuse a server whose echoed log-probabilities are shifted (see above)."""
        with self._probe_lock:
            if self._probed:
                return Usage()
            echo, usage = self._echo(self.prompt_text(PROBE_PROMPT) + PROBE_ANSWER)
            keep = len(echo.logprobs) - echo.completion_tokens
            tail = [v for v in echo.logprobs[max(0, keep - PROBE_TAIL) : keep] if v is not None]
            mean = sum(tail) / len(tail) if tail else -math.inf
            if mean < PROBE_FLOOR:
                raise RemoteGuideError(
                    f"{self.name} {self.describe()}: the server's echoed log-probabilities are "
                    f"misaligned (a counting probe scored {mean:.1f} per token; aligned is near 0). "
                    "llama-cpp-python shifts them by one when the prompt does not start with the "
                    "model's BOS token: start the role's template with the BOS text, e.g. "
                    "<|im_start|> for SmolLM2",
                    usage,
                )
            self._probed = True
            return usage


def remote_guide(spec: Any, name: str, api_key: str = "", **tries: float) -> RemoteGuide:
    """A remote guide from its preset role: api_base and model required; `api_key` is the value of
    the variable its api_key_env names (the wiring reads it), `tries` the W2S_API_* settings."""
    if not spec.api_base:
        raise ValueError(f"{name}: a remote guide needs 'api_base' (e.g. http://127.0.0.1:8001/v1)")
    model = spec.model or (spec.source.split(":", 1)[1] if ":" in spec.source else "")
    if not model:
        raise ValueError(f"{name}: a remote guide needs 'model' (or source = \"api:MODEL\")")
    config = ApiConfig.for_source(spec.source, spec.api_base, model, api_key, spec.api_key_env, **tries)
    return RemoteGuide(spec, shared_client(config, ApiClient), name)
