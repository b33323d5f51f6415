"""The keys of the noise: one seed per (seed, slot, position), per prompt and per method configuration.

Kept apart from noise.py (which draws the noise over torch logits) so that the search driver and the
server-backed engines, which only key their noise, do not import torch.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np


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


def method_seed(seed: int, method: str, params: dict) -> int:
    """The 32-bit noise seed of one method configuration under independent noise.

    The method's name and parameters enter the key, so in one comparison the baseline is not
    best-of-N's first sample and the search's first chunks are not best-of-N's first tokens:
    identical columns would waste a rater's vote.
    """
    key = method + ":" + json.dumps(params, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, 0x6D657468, *words]).generate_state(1)[0])
