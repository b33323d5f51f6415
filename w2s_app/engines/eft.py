"""Emulated fine-tuning with local models: per token, logits_S + beta * (log G+ - log G-).

The three models must share one vocabulary, since their logits are added entry by entry.
"""

from __future__ import annotations

import torch

from ..backends.roles import Models, Role
from ..contracts import EftRequest, Hooks, SamplingParams, SearchError, Stream
from ..contracts.stops import BLANK_RETRIES, retry_slot
from .kv import empty_cache
from .stream_text import StreamText
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
        parent = Stream()
        seed = sp.seed if req.seed is None else req.seed
        for attempt in range(1 + BLANK_RETRIES):
            # A fresh attempt re-reads the prompt: simpler than rewinding three caches, and rare.
            caches = [empty_cache() for _ in roles]
            feeds = [list(r.prompt_ids(prompt)) for r in roles]
            new: list[int] = []
            end = None
            for pos in range(sp.max_new_tokens):
                hooks.check_cancelled()
                logits = []
                for role, cache, feed in zip(roles, caches, feeds):
                    x = torch.tensor([feed], device=role.loaded.device)
                    out = role.model(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=1)
                    logits.append(out.logits[0, -1].float())
                tok = eft_token(
                    self.text, parent, new, logits, req.beta, sp, (seed, retry_slot(req.slot, attempt), pos)
                )
                new.append(tok)
                end = self.text.end(parent, new, attempt)
                if end is not None:
                    break
                feeds = [[tok]] * len(roles)
            if end != "restart":
                break
        return self.text.finish_chunk(parent, new, end == "eos", sp.max_new_tokens)
