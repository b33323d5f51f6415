"""Sample answers from a guide's base model, to be ranked by a reward into preference pairs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from ..backends.roles import Role


@dataclass(frozen=True)
class Sample:
    """One sampled answer; `finished` is False when it was cut at the token limit."""

    text: str
    finished: bool


@torch.inference_mode()
def sample_answers(
    role: Role,
    prompts: list[str],
    k: int,
    max_new_tokens: int,
    seed: int,
    stop: tuple[str, ...] = (),
    prompts_per_batch: int = 4,
) -> dict[str, list[Sample]]:
    """k sampled answers per prompt (temperature 1), cut at the first stop text; a few prompts per batch."""
    out: dict[str, list[Sample]] = {}
    tok = role.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else role.eos_id
    stops = set(role.stop_ids) | {role.eos_id}
    batches = [prompts[i : i + prompts_per_batch] for i in range(0, len(prompts), prompts_per_batch)]
    with tqdm(total=len(prompts), desc="sampling", unit="prompt") as bar:
        for b, group in enumerate(batches):
            rows = [role.prompt_ids(p) for p in group]
            width = max(len(r) for r in rows)
            # Left padding keeps every row's last prompt token at the same column for generate().
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            attn = torch.zeros_like(ids)
            for i, r in enumerate(rows):
                ids[i, width - len(r) :] = torch.tensor(r)
                attn[i, width - len(r) :] = 1
            torch.manual_seed(seed + b)
            gen = role.model.generate(
                input_ids=ids.to(role.loaded.device),
                attention_mask=attn.to(role.loaded.device),
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                num_return_sequences=k,
                max_new_tokens=max_new_tokens,
                pad_token_id=pad,
                eos_token_id=sorted(stops),
            )
            for i, prompt in enumerate(group):
                answers = []
                for row in gen[i * k : (i + 1) * k, width:].tolist():
                    ended = [j for j, t in enumerate(row) if t in stops]
                    cut = row[: ended[0]] if ended else row
                    text = tok.decode(cut, skip_special_tokens=True)
                    hits = [text.index(s) for s in stop if s in text]
                    answers.append(Sample(text[: min(hits)] if hits else text, bool(ended or hits)))
                out[prompt] = answers
            bar.update(len(group))
    return out
