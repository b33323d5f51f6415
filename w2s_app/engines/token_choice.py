"""Seeded token sampling that does not depend on batching.

The noise of every token is keyed by (seed, slot, position in the response), so a stream samples
the same tokens whether it runs alone or batched with others, whole or in chunks. That is what
makes the oracles hold: W=K=1 reproduces the baseline, L>=T reproduces best-of-N, the fast engine
reproduces the reference. We use the Gumbel-max trick (argmax of logits/temperature + Gumbel
noise), which samples exactly from the softmax and only flips when two perturbed logits tie to
within rounding, so batched and unbatched forward passes pick the same tokens. (An inverse-CDF
draw, one uniform per token, would be cheaper still, but its boundaries sit 1/V apart in the
tail: float differences between a batched and an unbatched pass flip it about a thousand times
more often, and the engines would stop agreeing.)

The noise of vocabulary entry i is a hash of (key, i) with 24-bit uniforms, so it is bounded
(at most GUMBEL_MAX) and can be computed for any subset of the vocabulary. Only entries whose
logit is within GUMBEL_MAX of the best perturbed value found among the top few can win, so only
those get noise: a few hundred hashes per token instead of a random number and two logarithms
for each of 262k entries, with exactly the result of perturbing every entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from ..contracts.seeds import noise_seed

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
# The largest Gumbel value a 24-bit uniform can give: -log(-log(1 - 2**-25)).
GUMBEL_MAX = float(-np.log(-np.log1p(-(2.0**-25))))
_TOP = 8  # entries perturbed first, to find a good lower bound of the winning value
_CANDIDATES = 64  # entries read back per row; a row with more possible winners reads them all


def gumbel_at(seed: int, slot: int, position: int, index: np.ndarray) -> np.ndarray:
    """Gumbel(0, 1) noise of the given vocabulary entries for one token draw (float64)."""
    key = np.uint64(noise_seed(seed, slot, position))
    with np.errstate(over="ignore"):
        z = key ^ (index.astype(np.uint64) * _GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z ^= z >> np.uint64(31)
    u = ((z >> np.uint64(40)).astype(np.float64) + 0.5) / float(1 << 24)
    return -np.log(-np.log(u))


def gumbel(seed: int, slot: int, position: int, size: int, device: str | torch.device) -> torch.Tensor:
    """Gumbel(0, 1) noise of every entry of a vocabulary of `size` for one token draw."""
    noise = gumbel_at(seed, slot, position, np.arange(size))
    return torch.from_numpy(noise).to(device=device, dtype=torch.float32)


def _perturbed_argmax(scaled: torch.Tensor, keys: list[tuple[int, int, int]]) -> list[int]:
    """Per row i, argmax_j(scaled[i, j] + gumbel_j) over the only entries that can win (ties: lower j).

    One batched top-k where the logits live gives each row's best few entries: the perturbed top
    ones bound the winning value from below, and entries more than GUMBEL_MAX under that bound
    can never win. When every entry above the cut is among the top-k (a peaked distribution, the
    usual case), those are the candidates; otherwise the row's candidates are read back in full.
    The result is exactly the argmax over the whole vocabulary.
    """
    k = min(_CANDIDATES, scaled.shape[-1])
    top_values, top_index = torch.topk(scaled, k, dim=-1)
    top_values, top_index = top_values.cpu().numpy().astype(np.float64), top_index.cpu().numpy()
    picked = []
    for i, key in enumerate(keys):
        values, index = top_values[i], top_index[i]
        best = index[: min(_TOP, k)][np.isfinite(values[: min(_TOP, k)])]
        floor = float(np.max(values[: len(best)] + gumbel_at(*key, best)))
        # The float32 comparison is widened by a margin so that rounding never drops a possible winner.
        cut = floor - GUMBEL_MAX - 1e-3
        if values[-1] < cut or k == scaled.shape[-1]:
            keep = values >= cut
            cand, vals = index[keep], values[keep]
        else:  # more entries near the top than the top-k holds: read the row's candidates back
            where = torch.nonzero(scaled[i] >= cut).squeeze(-1)
            cand, vals = where.cpu().numpy(), scaled[i, where].cpu().numpy().astype(np.float64)
        order = np.argsort(cand, kind="stable")  # ties go to the lower index, as a full argmax does
        cand, vals = cand[order], vals[order]
        picked.append(int(cand[np.argmax(vals + gumbel_at(*key, cand))]))
    return picked


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
    return _perturbed_argmax(scaled, keys)


def mask_tokens(logits: torch.Tensor, rows: Iterable[int], ids: tuple[int, ...]) -> torch.Tensor:
    """Logits with the given token ids ruled out for the given rows.

    Used for end-of-answer tokens while an answer is still blank, and for control tokens that no
    answer may contain. With Gumbel-max, masking before the argmax samples exactly from the
    distribution conditioned on "not these tokens", with the same noise, so every engine masks the
    same way and agrees.
    """
    rows = list(rows)
    if not rows or not ids:
        return logits
    logits = logits.clone()
    index = torch.tensor(rows, device=logits.device)
    logits[index.unsqueeze(1), torch.tensor(ids, device=logits.device)] = float("-inf")
    return logits


def choose_rows(logits: torch.Tensor, keys: list[tuple[int, int, int]], sps: list[Any]) -> list[int]:
    """One token per row, each row with its own comparison's temperature and top-p (SamplingParams)."""
    groups: dict[tuple[float, float], list[int]] = {}
    for b, sp in enumerate(sps):
        groups.setdefault((sp.temperature, sp.top_p), []).append(b)
    if len(groups) == 1:
        ((temperature, top_p),) = groups
        return choose_tokens(logits, keys, temperature, top_p)
    toks = [0] * len(keys)
    for (temperature, top_p), rows in groups.items():
        index = torch.tensor(rows, device=logits.device)
        picked = choose_tokens(logits[index], [keys[b] for b in rows], temperature, top_p)
        for b, tok in zip(rows, picked):
            toks[b] = tok
    return toks
