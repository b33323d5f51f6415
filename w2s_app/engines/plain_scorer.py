"""The implicit value of a response: log G+(y | T+(x)) - log G-(y | T-(x)), computed on text.

Each guide tokenizes the response text itself, so the strong model and the guides may use
different tokenizers. The guide's EOS token is scored only for responses that ended by EOS.
"""

from __future__ import annotations

import torch

from ..backends.roles import Models, Role
from ..contracts import Answer, Counts, ScorerAbilities, ScoreRequest


def guide_ids(role: Role, text: str, eos: bool) -> list[int]:
    """The guide's token ids of a response, plus its EOS when the response ended by EOS."""
    ids = role.response_ids(text)
    return ids + [role.eos_id] if eos and role.spec.score_eos else ids


@torch.inference_mode()
def sequence_logprob(role: Role, prompt: str, text: str, eos: bool) -> tuple[float, int]:
    """Sum of the guide's log-probabilities of the response tokens, and how many tokens were scored."""
    p_ids = role.prompt_ids(prompt)
    y_ids = guide_ids(role, text, eos)
    if not y_ids:
        return 0.0, 0
    ids = torch.tensor([p_ids + y_ids], device=role.loaded.device)
    logits = role.model(input_ids=ids).logits[0, len(p_ids) - 1 : -1].float()
    logp = torch.log_softmax(logits, dim=-1)
    target = torch.tensor(y_ids, device=logp.device).unsqueeze(-1)
    return float(logp.gather(-1, target).sum()), len(y_ids)


@torch.inference_mode()
def batch_logprobs(
    role: Role, prompt: str, texts: list[str], eos: list[bool], padding_side: str = "right"
) -> tuple[list[float], int]:
    """Log-probabilities of several responses in one padded forward pass (left or right padding)."""
    p_ids = role.prompt_ids(prompt)
    ys = [guide_ids(role, t, e) for t, e in zip(texts, eos)]
    rows = [p_ids + y for y in ys]
    width = max(len(r) for r in rows)
    pad = role.tokenizer.pad_token_id if role.tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    offsets = []
    for i, r in enumerate(rows):
        off = width - len(r) if padding_side == "left" else 0
        ids[i, off : off + len(r)] = torch.tensor(r)
        mask[i, off : off + len(r)] = 1
        offsets.append(off)
    # Positions count real tokens only, so left padding does not shift them.
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    dev = role.loaded.device
    logits = role.model(
        input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev)
    ).logits.float()
    logp = torch.log_softmax(logits, dim=-1)
    out = []
    for i, y in enumerate(ys):
        if not y:
            out.append(0.0)
            continue
        start = offsets[i] + len(p_ids)
        rows_lp = logp[i, start - 1 : start - 1 + len(y)]
        out.append(float(rows_lp.gather(-1, torch.tensor(y, device=dev).unsqueeze(-1)).sum()))
    return out, sum(len(y) for y in ys)


class PlainScorer:
    """The reference scorer: each stream scored alone, whole, by both guides."""

    abilities = ScorerAbilities(remote=False)

    def __init__(self, models: Models) -> None:
        self.models = models

    def score_many(self, items: list[tuple[str, ScoreRequest]]) -> list[Answer]:
        """One answer (scores, guide tokens read) per (prompt, request)."""
        out = []
        for prompt, req in items:
            counts, values = Counts(), []
            for s in req.streams:
                plus, n_plus = sequence_logprob(self.models.tuned, prompt, s.text, s.eos)
                minus, n_minus = sequence_logprob(self.models.untuned, prompt, s.text, s.eos)
                counts.guide_tokens += n_plus + n_minus
                values.append(plus - minus)
            out.append(Answer(values, counts=counts))
        return out

    def sampling(self, parents: set[int]) -> None:
        """Nothing is cached, so nothing to release."""

    def keep_prompts(self, prompts: set[str]) -> None:
        """Nothing is cached, so nothing to forget."""
