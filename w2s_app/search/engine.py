"""Engines answer the requests that methods yield. The reference engine is the plain oracle.

The reference engine is the simplest correct implementation: every chunk of every stream re-reads
the whole prompt and response, and every score re-runs both guides over the whole text. It is slow
and simple on purpose: faster engines must return exactly what it returns. (It is slower than the
published implementation, which keeps and reorders the strong model's KV cache across chunks and
only re-scores the guides; see the README's "Anchors" for the two side by side.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..backends.roles import Role
from .sampling import choose_tokens, find_stop, mask_eos
from .scoring import PlainScorer
from .types import Counts, EftRequest, SampleRequest, SamplingParams, ScoreRequest, Stream


class SearchError(ValueError):
    """A method cannot run with this setup (e.g. EFT across vocabularies)."""


@dataclass
class Answer:
    """An engine's answer to one request: a value or an error, plus the work it cost."""

    value: Any = None
    error: BaseException | None = None
    counts: Counts = field(default_factory=Counts)


@dataclass
class Models:
    """The strong model and the guide pair, each in its role."""

    strong: Any  # Role for local models; an API client for black-box ones
    tuned: Role
    untuned: Role


class Cancelled(RuntimeError):
    """The caller stopped the run (e.g. its client went away)."""


def noise_of(req: Any, sp: SamplingParams) -> int:
    """The noise seed of a request: the method's own, else the comparison's."""
    return sp.seed if getattr(req, "seed", None) is None else req.seed


@dataclass
class Hooks:
    """Optional callbacks an engine calls while it works (set by the driver for each run)."""

    # Called after each decoded token with a sample request and the current text of its rows.
    partial: Callable[[Any, list[str]], None] | None = None
    # Polled between decode steps: True stops the work (the engine raises driver.Cancelled).
    cancelled: Callable[[], bool] | None = None
    # Polled between decode steps: True makes the engine return early with the unfinished sample
    # requests unanswered (None), so a shared loop can let a new comparison join the batch.
    interrupt: Callable[[], bool] | None = None


class Engine(Protocol):
    """Answers a batch of requests from one or more methods on the same prompt."""

    models: Models
    hooks: Hooks

    def handle(self, prompt: str, sp: SamplingParams, requests: list[Any]) -> list[Answer]:
        """One answer per request, in order."""
        ...


def same_vocabulary(a: Role, b: Role) -> bool:
    """True when two roles' tokenizers map the same strings to the same ids."""
    return a.tokenizer is b.tokenizer or a.tokenizer.get_vocab() == b.tokenizer.get_vocab()


def check_eft(models: Models) -> None:
    """EFT adds logits token by token, so all three models must share one vocabulary."""
    if not isinstance(models.strong, Role):
        raise SearchError("eft needs the strong model's logits: it works with local models only")
    if not (isinstance(models.tuned, Role) and isinstance(models.untuned, Role)):
        raise SearchError("eft needs the guides' logits: it works with local guides only")
    if not (same_vocabulary(models.strong, models.tuned) and same_vocabulary(models.strong, models.untuned)):
        raise SearchError(
            "eft needs the strong model and both guides to share one vocabulary; "
            f"{models.strong.loaded.source!r} and the guides differ. Use w2s or bon, which score text."
        )


def eft_logits(logits: list[torch.Tensor], beta: float) -> torch.Tensor:
    """EFT's next-token logits: logits_S + beta * (log G+ - log G-), over the shared vocabulary."""
    vocab = min(len(x) for x in logits)
    s, plus, minus = (x[:vocab] for x in logits)
    return s + beta * (torch.log_softmax(plus, -1) - torch.log_softmax(minus, -1))


class LocalSampling:
    """Shared helpers for engines whose strong model is a local transformers model."""

    models: Models
    hooks: Hooks

    def check_cancelled(self) -> None:
        """Raise Cancelled when the run's caller asked to stop."""
        if self.hooks.cancelled is not None and self.hooks.cancelled():
            raise Cancelled("the run was cancelled")

    def finish_chunk(
        self, parent: Stream, new_ids: list[int], hit_eos: bool, budget: int, n_new: int
    ) -> Stream:
        """Turn sampled ids into a child stream, cutting at the first stop string."""
        strong: Role = self.models.strong
        ids = parent.token_ids + tuple(new_ids)
        text = strong.decode(list(ids))
        stop_at = find_stop(
            text, strong.spec.stop, len(parent.text) - max(map(len, strong.spec.stop or ("",)))
        )
        if stop_at is not None:
            text, hit_eos = text[:stop_at], True
        return parent.extend(text, ids, n_new, hit_eos, budget)

    def blank(self, parent: Stream, new_ids: list[int]) -> bool:
        """True while the answer has no visible text yet: it may not end there (EOS is masked)."""
        if parent.text.strip():
            return False
        return not self.models.strong.decode(list(parent.token_ids) + new_ids).strip()

    def stopped(self, parent: Stream, new_ids: list[int]) -> bool:
        """True when the text so far contains a stop string (checked per token)."""
        strong: Role = self.models.strong
        if not strong.spec.stop:
            return False
        text = strong.decode(list(parent.token_ids) + new_ids)
        longest = max(map(len, strong.spec.stop))
        return find_stop(text, strong.spec.stop, len(parent.text) - longest) is not None


class ReferenceEngine(LocalSampling):
    """Plain, uncached, one stream and one score at a time: the oracle."""

    def __init__(self, models: Models, scorer: Any = None) -> None:
        """`scorer` answers score requests (remote guides); None: the plain local scorer."""
        self.models = models
        self.hooks = Hooks()
        self.scorer = scorer if scorer is not None else PlainScorer(models)

    def handle(self, prompt: str, sp: SamplingParams, requests: list[Any]) -> list[Answer]:
        """Answer each request alone."""
        out = []
        for req in requests:
            try:
                out.append(self._one(prompt, sp, req))
            except Cancelled:
                raise
            except Exception as exc:
                out.append(Answer(error=exc))
        return out

    def _one(self, prompt: str, sp: SamplingParams, req: Any) -> Answer:
        counts = Counts()
        if isinstance(req, SampleRequest):
            streams = []
            for parent, slot in zip(req.parents, req.slots):
                stream = self.sample_chunk(prompt, sp, parent, slot, req.max_new, noise_of(req, sp), req)
                counts.strong_tokens += stream.n_tokens - parent.n_tokens
                streams.append(stream)
            return Answer(streams, counts=counts)
        if isinstance(req, ScoreRequest):
            (answer,) = self.scorer.score(prompt, [req])
            return answer
        if isinstance(req, EftRequest):
            check_eft(self.models)
            stream = self.eft_sample(prompt, sp, req)
            counts.strong_tokens += stream.n_tokens
            counts.guide_tokens += 2 * stream.n_tokens
            return Answer([stream], counts=counts)
        raise TypeError(f"unknown request {type(req).__name__}")

    @torch.inference_mode()
    def sample_chunk(
        self,
        prompt: str,
        sp: SamplingParams,
        parent: Stream,
        slot: int,
        max_new: int,
        seed: int | None = None,
        req: Any = None,
    ) -> Stream:
        """Sample up to max_new tokens after parent: one full forward pass, then cached decoding."""
        seed = sp.seed if seed is None else seed
        strong: Role = self.models.strong
        dev = strong.loaded.device
        ids = torch.tensor([strong.prompt_ids(prompt) + list(parent.token_ids)], device=dev)
        new: list[int] = []
        past = None
        hit_eos = False
        stop_ids = set(strong.stop_ids)
        for _ in range(max_new):
            self.check_cancelled()
            out = strong.model(input_ids=ids, past_key_values=past, use_cache=True)
            past = out.past_key_values
            pos = parent.n_tokens + len(new)
            logits = out.logits[:, -1]
            if self.blank(parent, new):
                logits = mask_eos(logits, [0], strong.stop_ids)
            (tok,) = choose_tokens(logits, [(seed, slot, pos)], sp.temperature, sp.top_p)
            if tok in stop_ids:
                hit_eos = True
                new.append(tok)
                break
            new.append(tok)
            if self.stopped(parent, new):
                break
            if self.hooks.partial is not None and req is not None:
                self.hooks.partial(req, [strong.decode(list(parent.token_ids) + new)])
            ids = torch.tensor([[tok]], device=dev)
        n_new = len(new)
        if hit_eos:
            new = new[:-1]  # the EOS token is counted as sampled but is not part of the text
        return self.finish_chunk(parent, new, hit_eos, sp.max_new_tokens, n_new)

    @torch.inference_mode()
    def eft_sample(self, prompt: str, sp: SamplingParams, req: EftRequest) -> Stream:
        """Token-level EFT sampling, re-reading every sequence at each step."""
        roles = (self.models.strong, self.models.tuned, self.models.untuned)
        prompts = [r.prompt_ids(prompt) for r in roles]
        dev = roles[0].loaded.device
        parent = Stream()
        new: list[int] = []
        hit_eos = False
        stop_ids = set(roles[0].stop_ids)
        for pos in range(sp.max_new_tokens):
            logits = []
            for role, p in zip(roles, prompts):
                x = torch.tensor([p + new], device=dev)
                logits.append(role.model(input_ids=x).logits[0, -1].float())
            mixed = eft_logits(logits, req.beta).unsqueeze(0)
            if self.blank(parent, new):
                mixed = mask_eos(mixed, [0], roles[0].stop_ids)
            key = (noise_of(req, sp), req.slot, pos)
            (tok,) = choose_tokens(mixed, [key], sp.temperature, sp.top_p)
            new.append(tok)
            if tok in stop_ids:
                hit_eos = True
                break
            if self.stopped(parent, new):
                break
        n_new = len(new)
        if hit_eos:
            new = new[:-1]
        return self.finish_chunk(parent, new, hit_eos, sp.max_new_tokens, n_new)
