"""Emulated fine-tuning with local models: per token, logits_S + beta * (log G+ - log G-).

The three models must share one vocabulary, since their logits are added entry by entry.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..backends.roles import Models, Role
from ..contracts import EftRequest, Hooks, SamplingParams, SearchError, Stream
from ..contracts.stops import retry_blank, retry_slot
from .kv import empty_cache
from .stream_text import End, StreamText
from .token_choice import choose_tokens


def same_vocabulary(a: Role, b: Role) -> bool:
    """True when two roles' tokenizers map the same strings to the same ids."""
    return a.tokenizer is b.tokenizer or a.tokenizer.get_vocab() == b.tokenizer.get_vocab()


def check_eft(models: Models) -> None:
    """SearchError unless all three models are local and share one vocabulary."""
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


def eft_token(
    text: StreamText, parent: Stream, new: list[int], logits: list[torch.Tensor], beta: float,
    sp: SamplingParams, key: tuple[int, int, int],
) -> int:  # fmt: skip
    """The next EFT token from the three models' last logits (strong, tuned, untuned): mixed, masked
    as the strong role's text rules say, drawn with the keyed noise."""
    mixed = text.allowed(eft_logits(logits, beta).unsqueeze(0), parent, new)
    (tok,) = choose_tokens(mixed, [key], sp.temperature, sp.top_p)
    return tok


# Per attempt: a function from the tokens drawn so far to the three models' next-token logits
# (strong, tuned, untuned). A fresh one each attempt, so it may keep caches of its own.
LogitsFrom = Callable[[list[int]], list[torch.Tensor]]


def eft_answer(
    text: StreamText, sp: SamplingParams, req: EftRequest, hooks: Hooks, start: Callable[[], LogitsFrom]
) -> Stream:
    """A whole EFT answer, token by token from `start()`'s logits; one that stops before any text is
    drawn again with fresh keyed noise (contracts.stops.retry_blank)."""
    parent = Stream()
    seed = sp.seed if req.seed is None else req.seed

    def attempt(n: int) -> tuple[list[int], End | None]:
        logits_of = start()
        new: list[int] = []
        end = None
        for pos in range(sp.max_new_tokens):
            hooks.check_cancelled()
            key = (seed, retry_slot(req.slot, n), pos)
            new.append(eft_token(text, parent, new, logits_of(new), req.beta, sp, key))
            end = text.end(parent, new, n)
            if end is not None:
                break
        return new, end

    new, end = retry_blank(attempt, lambda result: result[1] == "restart")
    return text.finish_chunk(parent, new, end == "eos", sp.max_new_tokens)


class TorchEft:
    """Token-level EFT with each of the three models reading every token once (cached)."""

    def __init__(self, models: Models) -> None:
        self.models = models
        self.text = StreamText(models.strong)

    @torch.inference_mode()
    def sample(self, prompt: str, sp: SamplingParams, req: EftRequest, hooks: Hooks) -> Stream:
        """A whole EFT answer (the same tokens as the reference engine's)."""
        check_eft(self.models)
        roles = (self.models.strong, self.models.tuned, self.models.untuned)

        def start() -> LogitsFrom:
            # A fresh attempt re-reads the prompt: simpler than rewinding three caches, and rare.
            caches = [empty_cache() for _ in roles]
            prompts = [list(r.prompt_ids(prompt)) for r in roles]

            def logits_of(new: list[int]) -> list[torch.Tensor]:
                feeds = [[new[-1]]] * len(roles) if new else prompts
                out = []
                for role, cache, feed in zip(roles, caches, feeds):
                    x = torch.tensor([feed], device=role.loaded.device)
                    run = role.model(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=1)
                    out.append(run.logits[0, -1].float())
                return out

            return logits_of

        return eft_answer(self.text, sp, req, hooks, start)
