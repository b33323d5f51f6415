"""The reference engine: the plain oracle. Faster engines must return exactly what it returns.

Every chunk of every stream re-reads the whole prompt and response, and every score re-runs both
guides over the whole text. It is slow and simple on purpose. (It is slower than the published
implementation, which keeps and reorders the strong model's KV cache across chunks and only re-scores
the guides.)
"""

from __future__ import annotations

from typing import Any

import torch

from ..backends.roles import Models, Role
from ..contracts import (
    Answer,
    Asked,
    Cancelled,
    Counts,
    EftRequest,
    EngineAbilities,
    Hooks,
    SampleRequest,
    SamplingParams,
    Scorer,
    ScoreRequest,
    Stream,
)
from ..contracts.stops import retry_blank, retry_slot
from .eft_sampling import check_eft, eft_answer
from .plain_scorer import PlainScorer
from .stream_text import StreamText
from .token_choice import choose_tokens


class ReferenceEngine:
    """Plain, uncached, one stream and one score at a time, one comparison at a time."""

    abilities = EngineAbilities(joinable=False)

    def __init__(self, models: Models, scorer: Scorer | None = None) -> None:
        """`scorer` answers score requests (remote guides); None: the plain local scorer."""
        self.models = models
        self.hooks = Hooks()
        self.scorer = scorer if scorer is not None else PlainScorer(models)
        self.text = StreamText(models.strong)

    @property
    def stops(self) -> tuple[str, ...]:
        """The strong model's stop strings."""
        return self.text.stops

    def answer_ready(self, asked: list[Asked]) -> list[Answer | None]:
        """Answer each request alone, all of them."""
        out: list[Answer | None] = []
        for a in asked:
            try:
                out.append(self._one(a.prompt, a.sp, a.request))
            except Cancelled:
                raise
            except Exception as exc:
                out.append(Answer(error=exc))
        return out

    def _one(self, prompt: str, sp: SamplingParams, req: Any) -> Answer:
        counts = Counts()
        if isinstance(req, SampleRequest):
            streams = []
            seed = sp.seed if req.seed is None else req.seed
            for parent, slot in zip(req.parents, req.slots):
                stream = self.sample_chunk(prompt, sp, parent, slot, req.max_new, seed, req)
                counts.strong_tokens += stream.n_tokens - parent.n_tokens
                streams.append(stream)
            return Answer(streams, counts=counts)
        if isinstance(req, ScoreRequest):
            (answer,) = self.scorer.score_many([(prompt, req)])
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
        chunk = retry_blank(
            lambda n: self._attempt(prompt, sp, parent, retry_slot(slot, n), max_new, seed, req, n),
            lambda result: result is None,
        )
        assert chunk is not None  # the last attempt never restarts (StreamText.restarts)
        new, hit_eos = chunk
        return self.text.finish_chunk(parent, new, hit_eos, sp.max_new_tokens)

    def _attempt(
        self,
        prompt: str,
        sp: SamplingParams,
        parent: Stream,
        slot: int,
        max_new: int,
        seed: int,
        req: Any,
        attempt: int,
    ) -> tuple[list[int], bool] | None:
        """One attempt at a chunk: its tokens and whether it hit EOS; None when it must start again."""
        strong: Role = self.models.strong
        dev = strong.loaded.device
        ids = torch.tensor([strong.prompt_ids(prompt) + list(parent.token_ids)], device=dev)
        new: list[int] = []
        past = None
        for _ in range(max_new):
            self.hooks.check_cancelled()
            out = strong.model(input_ids=ids, past_key_values=past, use_cache=True)
            past = out.past_key_values
            pos = parent.n_tokens + len(new)
            logits = self.text.allowed(out.logits[:, -1], parent, new)
            (tok,) = choose_tokens(logits, [(seed, slot, pos)], sp.temperature, sp.top_p)
            new.append(tok)
            end = self.text.end(parent, new, attempt)
            if end == "eos":
                return new, True
            if end == "restart":
                return None
            if end == "stop":
                break
            if self.hooks.partial is not None and req is not None:
                self.hooks.partial(req, [strong.decode(list(parent.token_ids) + new)])
            ids = torch.tensor([[tok]], device=dev)
        return new, False

    @torch.inference_mode()
    def eft_sample(self, prompt: str, sp: SamplingParams, req: EftRequest) -> Stream:
        """Token-level EFT sampling, re-reading every sequence at each step."""
        roles = (self.models.strong, self.models.tuned, self.models.untuned)
        prompts = [r.prompt_ids(prompt) for r in roles]
        dev = roles[0].loaded.device

        def logits_of(new: list[int]) -> list[torch.Tensor]:
            return [
                role.model(input_ids=torch.tensor([p + new], device=dev)).logits[0, -1].float()
                for role, p in zip(roles, prompts)
            ]

        return eft_answer(self.text, sp, req, self.hooks, lambda: logits_of)
