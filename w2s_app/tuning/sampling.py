"""Sample answers from a guide's base model, to be ranked by a reward into preference pairs."""

from __future__ import annotations

import torch
from tqdm import tqdm

from ..backends.roles import Role


@torch.inference_mode()
def sample_answers(
    role: Role, prompts: list[str], k: int, max_new_tokens: int, seed: int
) -> dict[str, list[str]]:
    """k sampled answers per prompt (temperature 1), decoded without special tokens."""
    out: dict[str, list[str]] = {}
    tok = role.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else role.eos_id
    for i, prompt in enumerate(tqdm(prompts, desc="sampling", unit="prompt")):
        ids = torch.tensor([role.prompt_ids(prompt)], device=role.loaded.device)
        torch.manual_seed(seed + i)
        gen = role.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            num_return_sequences=k,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=role.eos_id,
        )
        out[prompt] = [tok.decode(row[ids.shape[1] :], skip_special_tokens=True) for row in gen]
    return out
