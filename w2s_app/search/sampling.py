"""Seeded token sampling that does not depend on batching.

The noise for every token is keyed by (seed, slot, position in the response), so a stream samples
the same tokens whether it runs alone or batched with others, whole or in chunks. That is what
makes the oracles hold: W=K=1 reproduces the baseline, L>=T reproduces best-of-N, the fast engine
reproduces the reference. We use the Gumbel-max trick (argmax of logits/temperature + Gumbel
noise), which samples exactly from the softmax and only flips when two perturbed logits tie to
within rounding, so batched and unbatched forward passes pick the same tokens.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def noise_seed(seed: int, slot: int, position: int) -> int:
    """A 63-bit generator seed mixed from (seed, slot, position)."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, slot, position]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def prompt_seed(seed: int, prompt: str) -> int:
    """The 32-bit noise seed of one (seed, prompt): the same prompt and seed give the same answers.

    Without the prompt in the key, every prompt run with seed 0 would draw the same noise at each
    position, so answers to different prompts would be correlated and a mean over prompts biased.
    """
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, *words]).generate_state(1)[0])


def gumbel(seed: int, slot: int, position: int, size: int, device: str | torch.device) -> torch.Tensor:
    """Gumbel(0, 1) noise of length `size` for one token draw."""
    gen = torch.Generator(device=device).manual_seed(noise_seed(seed, slot, position))
    u = torch.rand(size, generator=gen, device=device, dtype=torch.float32)
    u = u.clamp_(min=1e-20, max=1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def choose_tokens(
    logits: torch.Tensor,
    keys: list[tuple[int, int, int]],
    temperature: float,
    top_p: float,
) -> list[int]:
    """Pick one token per row of logits (B, V); row i uses the noise of keys[i] = (seed, slot, pos)."""
    logits = logits.float()
    if temperature <= 0:
        return logits.argmax(dim=-1).tolist()
    scaled = logits / temperature
    if top_p < 1.0:
        probs = torch.softmax(scaled, dim=-1)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        before = sorted_p.cumsum(dim=-1) - sorted_p
        drop_sorted = before >= top_p  # the top token is always kept
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        scaled = scaled.masked_fill(drop, float("-inf"))
    size = scaled.shape[-1]
    noise = torch.stack([gumbel(s, slot, pos, size, scaled.device) for s, slot, pos in keys])
    return (scaled + noise).argmax(dim=-1).tolist()


def find_stop(text: str, stops: tuple[str, ...], start: int = 0) -> int | None:
    """Index of the earliest stop string that begins at or after `start`, or None."""
    hits = [i for s in stops if s and (i := text.find(s, max(0, start))) >= 0]
    return min(hits) if hits else None
