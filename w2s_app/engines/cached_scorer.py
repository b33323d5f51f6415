"""The cached scorer: the guide pair's score of many streams, each guide reading each token about once.

Each scored stream keeps, per guide, its token ids, per-token log-probabilities and KV cache; a
child re-tokenizes its text and reuses its parent's cache up to the longest common token prefix.
Caches live only while a stream can still become a parent (see `StateStore`). It returns what
the plain scorer (`plain_scorer.sequence_logprob`, the reference) returns, up to float rounding, for
any sampler: local transformers, llama.cpp or a remote API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..backends.roles import Models, Role
from ..contracts import Answer, ScorerAbilities, ScoreRequest, Stream
from .kv import KV, crop, empty_cache, pack, unpack
from .states import StateStore, pair_answers

# Most query tokens one guide forward pass may hold: bounds the (rows, tokens, vocab) logits tensor.
GUIDE_TOKENS_PER_PASS = 1024
ROOTS_KEPT = 64  # prefilled prompts kept per guide (comparisons running together each need theirs)


@dataclass
class GuideState:
    """One guide's view of a stream: response token ids, their log-probs, cache over prompt + ids."""

    ids: list[int]
    logps: list[float]
    kv: KV


@dataclass
class _GuideJob:
    """One stream scored by one guide: feed `feed` after the first `reuse` cached positions."""

    stream: Stream
    base: GuideState
    ids: list[int]
    common: int  # response tokens shared with the base state
    reuse: int  # cached positions kept (prompt + common - 1)
    feed: list[int]
    targets: list[int]  # token each fed position predicts (the last may be the EOS term)
    logps: list[float] = field(default_factory=list)
    kv: KV = ()


class CachedScorer:
    """Scores streams with the guide pair, reusing each parent's cached prefix."""

    abilities = ScorerAbilities(remote=False)

    def __init__(self, models: Models) -> None:
        self.models = models
        self.guide_states = StateStore()  # value: (tuned GuideState, untuned GuideState)
        self._roots: dict[tuple[int, str], GuideState] = {}  # (role id, prompt) -> prefilled prompt

    def keep_prompts(self, prompts: set[str]) -> None:
        """Only these comparisons still run: the others' cached states and prompts can go."""
        self.guide_states.keep_prompts(prompts)
        self._roots = {k: v for k, v in self._roots.items() if k[1] in prompts}

    def sampling(self, parents: set[int]) -> None:
        """The given streams are being extended: their siblings can never be a parent again."""
        self.guide_states.release_groups(parents, keep=parents)  # their children will extend these

    @torch.inference_mode()
    def _guide_root(self, role: Role, prompt: str) -> GuideState:
        """A guide's templated prompt, prefilled once."""
        key = (id(role), prompt)
        if key not in self._roots:
            ids = role.prompt_ids(prompt)
            cache = empty_cache()
            x = torch.tensor([ids], device=role.loaded.device)
            role.model(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=1)
            # Several prompts (comparisons running together in one loop) keep their roots.
            if len(self._roots) >= 2 * ROOTS_KEPT:
                self._roots.pop(next(iter(self._roots)))
            self._roots[key] = GuideState([], [], unpack(cache, 0, torch.ones(len(ids), dtype=torch.long)))
        return self._roots[key]

    @torch.inference_mode()
    def score_many(self, items: list[tuple[str, ScoreRequest]]) -> list[Answer]:
        """Score every stream of every (prompt, request) with both guides, reusing cached prefixes.

        Requests of several prompts (comparisons running together) share the guide passes.
        """
        roles = (self.models.tuned, self.models.untuned)
        streams = [(prompt, s) for prompt, req in items for s in req.streams]
        encoded: dict[tuple[int, str], list[int]] = {}
        jobs: list[list[_GuideJob]] = []
        for g, role in enumerate(roles):
            per_role = []
            for prompt, s in streams:
                key = (id(role.tokenizer), s.text)
                if key not in encoded:  # guides sharing a tokenizer encode each text once
                    encoded[key] = role.response_ids(s.text)
                base = self._guide_base(g, s) or self._guide_root(role, prompt)
                p_len = len(role.prompt_ids(prompt))
                per_role.append(self._guide_job(role, prompt, p_len, s, encoded[key], base))
            jobs.append(per_role)
        # Guides that are one model under two templates run in the same forward passes.
        by_model: dict[int, list[tuple[Role, _GuideJob]]] = {}
        for role, per_role in zip(roles, jobs):
            by_model.setdefault(id(role.model), []).extend((role, j) for j in per_role)
        for pairs in by_model.values():
            self._run_guide(pairs)
        out, groups = pair_answers(
            items, jobs, lambda s, plus, minus: None if s.done else (_state(plus), _state(minus))
        )
        # A method's next request names one group; the parents' guide caches are spent.
        self.guide_states.settle(groups, [s.parent for _, s in streams])
        return out

    def _guide_base(self, g: int, s: Stream) -> GuideState | None:
        """The cached state to extend: the stream's own (re-scored), else its parent's."""
        own = self.guide_states.get(s.id)
        if own is not None:
            return own[g]
        parent = self.guide_states.get(s.parent) if s.parent else None
        return parent[g] if parent is not None else None

    def _guide_job(
        self, role: Role, prompt: str, p_len: int, s: Stream, ids: list[int], base: GuideState
    ) -> _GuideJob:
        """Plan one guide's work on one stream: what to reuse, what to feed, what to score."""
        common = 0
        for a, b in zip(base.ids, ids):
            if a != b:
                break
            common += 1
        # Re-feed the last shared token: its output is the distribution of the first new token.
        reuse = p_len + common - 1
        full = role.prompt_ids(prompt) + ids
        feed = full[reuse:]
        targets = full[reuse + 1 :] + ([role.eos_id] if s.eos and role.spec.score_eos else [])
        job = _GuideJob(s, base, ids, common, reuse, feed, targets)
        job.logps = list(base.logps[:common])
        return job

    def _run_guide(self, pairs: list[tuple[Role, _GuideJob]]) -> None:
        """Forward passes over all jobs of one guide model, batched within a token budget."""
        batch: list[tuple[Role, _GuideJob]] = []
        width = 0
        for pair in sorted(pairs, key=lambda p: len(p[1].feed)):
            width = max(width, len(pair[1].feed))
            if batch and width * (len(batch) + 1) > GUIDE_TOKENS_PER_PASS:
                self._guide_pass(batch)
                batch, width = [], len(pair[1].feed)
            batch.append(pair)
        if batch:
            self._guide_pass(batch)

    def _guide_pass(self, pairs: list[tuple[Role, _GuideJob]]) -> None:
        """One forward pass: cached prefixes left-padded, new tokens right-padded."""
        role = pairs[0][0]
        dev = role.loaded.device
        jobs = [j for _, j in pairs]
        cache, cache_mask = pack([crop(j.base.kv, j.reuse) for j in jobs])
        width = max(len(j.feed) for j in jobs)
        pad = role.tokenizer.pad_token_id if role.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(jobs), width), pad, dtype=torch.long)
        new_mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for i, j in enumerate(jobs):
            ids[i, : len(j.feed)] = torch.tensor(j.feed)
            new_mask[i, : len(j.feed)] = 1
        mask = torch.cat([cache_mask.to(dev), new_mask.to(dev)], dim=1)
        # Right padding keeps every query row attending to something (no all-masked rows).
        positions = torch.tensor([j.reuse for j in jobs]).unsqueeze(1) + torch.arange(width)
        out = role.model(
            input_ids=ids.to(dev),
            attention_mask=mask,
            position_ids=positions.to(dev),
            past_key_values=cache,
            use_cache=True,
        )
        for i, j in enumerate(jobs):
            if j.targets:
                logits = out.logits[i, : len(j.targets)].float()
                logp = torch.log_softmax(logits, dim=-1)
                target = torch.tensor(j.targets, device=logp.device).unsqueeze(-1)
                j.logps += logp.gather(-1, target).squeeze(-1).tolist()
            if not j.stream.done:
                j.kv = unpack(cache, i, mask[i])


def _state(job: _GuideJob) -> GuideState:
    """The stream's state for later children (EOS terms are never part of it: such streams are done)."""
    return GuideState(job.ids, job.logps[: len(job.ids)], job.kv)
