"""The fast engine: every method's streams in one batched, cached decode loop; incremental scoring.

It answers exactly what the reference engine answers (same texts; scores equal up to float
rounding) at close to the algorithm's physical cost:
- strong model: the prompt is prefilled once; each stream keeps its KV cache, so a chunk runs only
  its new tokens; all live streams of all requests decode in one batch; finished ones leave it;
- guides: each scored stream keeps, per guide, its token ids, per-token log-probabilities and KV
  cache; a child re-tokenizes its text and reuses its parent's cache up to the longest common
  token prefix, so every guide reads each token about once.
Caches live only while a stream can still become a parent (see `StateStore`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..backends.roles import Role
from .engine import (
    Answer,
    Cancelled,
    Hooks,
    LocalSampling,
    Models,
    SearchError,
    check_eft,
    eft_logits,
    noise_of,
)
from .kv import KV, crop, empty_cache, pack, select_rows, unpack
from .sampling import choose_tokens, mask_eos
from .types import ROOT, Counts, EftRequest, SampleRequest, SamplingParams, ScoreRequest, Stream

# Most query tokens one guide forward pass may hold: bounds the (rows, tokens, vocab) logits tensor.
GUIDE_TOKENS_PER_PASS = 1024


@dataclass
class StrongState:
    """A stream's strong-model cache over prompt + response minus its last token, which is pending."""

    kv: KV
    pending: int  # next token to feed (the last one sampled, or the prompt's last token)
    length: int  # position of the pending token


@dataclass
class GuideState:
    """One guide's view of a stream: response token ids, their log-probs, cache over prompt + ids."""

    ids: list[int]
    logps: list[float]
    kv: KV


@dataclass
class StateStore:
    """Caches keyed by stream id, registered in groups (the outputs of one request).

    A method's next request names its parents, which all come from one earlier group; at that point
    the rest of the group can never be a parent again and is dropped. So the store holds about one
    group per running method, however many chunks the search takes.
    """

    states: dict[int, Any] = field(default_factory=dict)
    group_of: dict[int, frozenset[int]] = field(default_factory=dict)

    def get(self, sid: int) -> Any:
        """The state of a stream, or None."""
        return self.states.get(sid)

    def add_group(self, states: dict[int, Any]) -> None:
        """Register the states produced by one request."""
        group = frozenset(states)
        for sid, state in states.items():
            self.states[sid] = state
            self.group_of[sid] = group

    def release_groups(self, parents: set[int], keep: set[int]) -> None:
        """Drop every member of the groups holding `parents`, except those in `keep`."""
        for p in parents:
            for sid in self.group_of.get(p, ()):
                if sid not in keep:
                    self.drop(sid)

    def drop(self, sid: int) -> None:
        """Forget one stream."""
        self.states.pop(sid, None)
        self.group_of.pop(sid, None)

    def __len__(self) -> int:
        return len(self.states)


@dataclass
class _Row:
    """One stream being sampled in the batched strong loop."""

    parent: Stream
    slot: int
    max_new: int
    seed: int
    new: list[int] = field(default_factory=list)
    visible: bool = False  # the answer has non-blank text (from then on it may end)
    eos: bool = False
    child: Stream | None = None


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


@dataclass
class _Flight:
    """A sample request being decoded, with the caches its unfinished children will keep."""

    request: SampleRequest
    rows: list[_Row]
    stored: dict[int, StrongState] = field(default_factory=dict)


@dataclass
class _Batch:
    """The strong model's running batch: one row per live stream, all rows of all requests."""

    rows: list[_Row]
    cache: Any
    mask: torch.Tensor  # (rows, cached length + 1 per step): 0 marks left padding
    pending: torch.Tensor  # (rows, 1): token each row feeds next
    positions: torch.Tensor  # (rows, 1): that token's position


class FastEngine(LocalSampling):
    """Batched, cached engine with the reference engine's results."""

    def __init__(self, models: Models) -> None:
        self.models = models
        self.hooks = Hooks()
        self.strong_states = StateStore()
        self.guide_states = StateStore()  # value: (tuned GuideState, untuned GuideState)
        self._roots: dict[tuple[int, str], Any] = {}  # (role id, prompt) -> root state
        self._flight_key: tuple[str, SamplingParams] | None = None
        self._drop_flight()

    def handle(self, prompt: str, sp: SamplingParams, requests: list[Any]) -> list[Answer]:
        """One answer per request: sample requests share one decode loop, scores one pass."""
        answers: list[Answer | None] = [None] * len(requests)
        while True:
            todo = [i for i, a in enumerate(answers) if a is None]
            if not todo:
                return answers  # type: ignore[return-value]
            for i, ans in zip(todo, self.handle_ready(prompt, sp, [requests[i] for i in todo])):
                answers[i] = ans

    def handle_ready(self, prompt: str, sp: SamplingParams, requests: list[Any]) -> list[Answer | None]:
        """Answer what is ready first; None marks a sample request still decoding (ask again).

        Scores are answered at once, so a search can send its next chunk while long samples (the
        baseline's, best-of-N's) keep decoding: every method's streams then share each decode step
        instead of waiting for the slowest request of a round.
        """
        if self._flight_key != (prompt, sp):
            self._drop_flight()
            self._flight_key = (prompt, sp)
        answers: list[Answer | None] = [None] * len(requests)
        samples = [i for i, r in enumerate(requests) if isinstance(r, SampleRequest)]
        scores = [i for i, r in enumerate(requests) if isinstance(r, ScoreRequest)]
        if scores:
            try:
                for i, ans in zip(scores, self._score(prompt, sp, [requests[i] for i in scores])):
                    answers[i] = ans
            except Exception as exc:
                for i in scores:
                    answers[i] = Answer(error=exc)
        for i, req in enumerate(requests):
            if answers[i] is None and i not in samples:
                answers[i] = self._other(prompt, sp, req)
        try:
            self._join(prompt, sp, [requests[i] for i in samples])
            if all(a is None for a in answers):
                self._decode_until_done(sp)
        except Cancelled:
            self._drop_flight()
            raise
        except Exception as exc:
            self._drop_flight()
            for i in samples:
                answers[i] = Answer(error=exc)
            return answers
        for i in samples:
            answers[i] = self._finished(requests[i], sp)
        return answers

    def _other(self, prompt: str, sp: SamplingParams, req: Any) -> Answer:
        """EFT runs on its own (one stream, three models per token); anything else is an error."""
        try:
            if isinstance(req, EftRequest):
                check_eft(self.models)
                stream = self._eft(prompt, sp, req)
                counts = Counts(strong_tokens=stream.n_tokens, guide_tokens=2 * stream.n_tokens)
                return Answer([stream], counts=counts)
            raise TypeError(f"unknown request {type(req).__name__}")
        except Exception as exc:
            return Answer(error=exc)

    def _strong(self) -> Role:
        strong = self.models.strong
        if not isinstance(strong, Role):
            raise SearchError("the fast engine needs a local strong model")
        return strong

    # ---- strong model -------------------------------------------------------------------------

    @torch.inference_mode()
    def _strong_root(self, prompt: str) -> StrongState:
        """The prompt prefilled once (all but its last token, which becomes pending)."""
        strong = self._strong()
        key = (id(strong), prompt)
        if key not in self._roots:
            ids = strong.prompt_ids(prompt)
            self._roots = {k: v for k, v in self._roots.items() if k[1] == prompt}
            self._roots[key] = self._prefill_strong(ids)
        return self._roots[key]

    def _prefill_strong(self, ids: list[int]) -> StrongState:
        """Run ids[:-1] from scratch; ids[-1] is left pending."""
        strong = self._strong()
        cache = empty_cache()
        if len(ids) > 1:
            x = torch.tensor([ids[:-1]], device=strong.loaded.device)
            strong.model(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=1)
            kv = unpack(cache, 0, torch.ones(len(ids) - 1, dtype=torch.long))
        else:
            kv = ()
        return StrongState(kv=kv, pending=ids[-1], length=len(ids) - 1)

    def _strong_state(self, prompt: str, parent: Stream) -> StrongState:
        """The parent's cached state; rebuilt from the prompt if it was dropped (slower, same result)."""
        if parent.id == ROOT.id or not parent.token_ids:
            return self._strong_root(prompt)
        state = self.strong_states.get(parent.id)
        if state is None:
            state = self._prefill_strong(self._strong().prompt_ids(prompt) + list(parent.token_ids))
        return state

    def _drop_flight(self) -> None:
        """Forget every request being decoded."""
        self._flight: list[_Flight] = []
        self._batch: _Batch | None = None

    @torch.inference_mode()
    def _join(self, prompt: str, sp: SamplingParams, reqs: list[SampleRequest]) -> None:
        """Add new sample requests to the running batch; drop requests nobody asks for any more."""
        asked = {id(r) for r in reqs}
        gone = [f for f in self._flight if id(f.request) not in asked]
        if gone:
            self._flight = [f for f in self._flight if id(f.request) in asked]
            self._remove_rows({id(r) for f in gone for r in f.rows})
        known = {id(f.request) for f in self._flight}
        new_rows: list[_Row] = []
        states: list[StrongState] = []
        for req in reqs:
            if id(req) in known:
                continue
            seed = noise_of(req, sp)
            flight = _Flight(req, [_Row(p, s, req.max_new, seed) for p, s in zip(req.parents, req.slots)])
            self._flight.append(flight)
            parents = {r.parent.id for r in flight.rows}
            for r in flight.rows:
                if r.max_new <= 0:
                    r.child = r.parent.extend(r.parent.text, r.parent.token_ids, 0, False, sp.max_new_tokens)
                else:
                    new_rows.append(r)
                    states.append(self._strong_state(prompt, r.parent))
            # The parents' siblings were not kept: no request can name them again.
            self.strong_states.release_groups(parents, keep=set())  # parents are copied into the batch
            self.guide_states.release_groups(parents, keep=parents)  # their children will extend these
        if new_rows:
            self._add_rows(new_rows, states)

    def _add_rows(self, rows: list[_Row], states: list[StrongState]) -> None:
        """Re-pack the batch with the new rows appended (once per request, not per token)."""
        dev = self._strong().loaded.device
        old = self._batch
        kvs = [unpack(old.cache, b, old.mask[b]) for b in range(len(old.rows))] if old else []
        cache, mask = pack(kvs + [s.kv for s in states])
        pending = torch.tensor([[s.pending] for s in states], device=dev)
        positions = torch.tensor([[s.length] for s in states], device=dev)
        if old:
            pending = torch.cat([old.pending, pending])
            positions = torch.cat([old.positions, positions])
        self._batch = _Batch((old.rows if old else []) + rows, cache, mask.to(dev), pending, positions)

    def _remove_rows(self, row_ids: set[int]) -> None:
        """Take rows out of the batch (finished, or their request was abandoned)."""
        batch = self._batch
        if batch is None:
            return
        keep = [b for b, r in enumerate(batch.rows) if id(r) not in row_ids]
        if not keep:
            self._batch = None
            return
        if len(keep) == len(batch.rows):
            return
        select_rows(batch.cache, keep)
        index = torch.tensor(keep, device=batch.mask.device)
        batch.rows = [batch.rows[b] for b in keep]
        batch.mask, batch.pending, batch.positions = (
            batch.mask[index],
            batch.pending[index],
            batch.positions[index],
        )

    def _finished(self, req: SampleRequest, sp: SamplingParams) -> Answer | None:
        """The answer of a request whose rows have all ended their chunk, else None."""
        flight = next(f for f in self._flight if f.request is req)
        if any(r.child is None for r in flight.rows):
            return None
        self._flight.remove(flight)
        self.strong_states.add_group(flight.stored)
        counts = Counts(strong_tokens=sum(r.child.n_tokens - r.parent.n_tokens for r in flight.rows))
        return Answer([r.child for r in flight.rows], counts=counts)

    @torch.inference_mode()
    def _decode_until_done(self, sp: SamplingParams) -> None:
        """Decode one token per live row per step until some request has all its chunks."""
        while self._batch is not None:
            self.check_cancelled()
            self._step(sp)
            self._report_partials()
            if any(all(r.child is not None for r in f.rows) for f in self._flight):
                return

    def _step(self, sp: SamplingParams) -> None:
        """One batched forward pass of the strong model and one token for every live row."""
        strong = self._strong()
        batch = self._batch
        assert batch is not None
        stop_ids = set(strong.stop_ids)
        ones = torch.ones((len(batch.rows), 1), dtype=batch.mask.dtype, device=batch.mask.device)
        batch.mask = torch.cat([batch.mask, ones], dim=1)
        out = strong.model(
            input_ids=batch.pending,
            attention_mask=batch.mask,
            position_ids=batch.positions,
            past_key_values=batch.cache,
            use_cache=True,
        )
        keys = [(r.seed, r.slot, r.parent.n_tokens + len(r.new)) for r in batch.rows]
        logits = out.logits[:, -1]
        blank = []
        for b, r in enumerate(batch.rows):
            r.visible = r.visible or not self.blank(r.parent, r.new)
            if not r.visible:
                blank.append(b)
        toks = choose_tokens(mask_eos(logits, blank, strong.stop_ids), keys, sp.temperature, sp.top_p)
        done: set[int] = set()
        for b, (r, tok) in enumerate(zip(batch.rows, toks)):
            r.new.append(tok)
            if tok in stop_ids:
                r.eos = True
            elif not self.stopped(r.parent, r.new) and len(r.new) < r.max_new:
                continue
            done.add(id(r))
            r.child = self._child(sp, r)
            if not r.child.done:
                # Chunk ended by its length: this row's cache is the child's, its last token pending.
                flight = next(f for f in self._flight if any(x is r for x in f.rows))
                flight.stored[r.child.id] = StrongState(
                    unpack(batch.cache, b, batch.mask[b]), pending=tok, length=int(batch.positions[b, 0]) + 1
                )
        batch.pending = torch.tensor([[t] for t in toks], device=batch.pending.device)
        batch.positions = batch.positions + 1
        if done:
            self._remove_rows(done)

    def _report_partials(self) -> None:
        """Tell the hook the text so far of every single-stream answer still decoding (baseline)."""
        if self.hooks.partial is None:
            return
        strong = self._strong()
        for f in self._flight:
            if len(f.rows) == 1 and f.rows[0].parent.id == ROOT.id and f.rows[0].child is None:
                row = f.rows[0]
                self.hooks.partial(f.request, [strong.decode(list(row.parent.token_ids) + row.new)])

    def _child(self, sp: SamplingParams, r: _Row) -> Stream:
        """The finished chunk as a stream, exactly as the reference builds it."""
        n_new = len(r.new)
        new = r.new[:-1] if r.eos else r.new  # EOS is counted as sampled but is not part of the text
        return self.finish_chunk(r.parent, new, r.eos, sp.max_new_tokens, n_new)

    # ---- guides -------------------------------------------------------------------------------

    @torch.inference_mode()
    def _guide_root(self, role: Role, prompt: str) -> GuideState:
        """A guide's templated prompt, prefilled once."""
        key = (id(role), prompt)
        if key not in self._roots:
            ids = role.prompt_ids(prompt)
            cache = empty_cache()
            x = torch.tensor([ids], device=role.loaded.device)
            role.model(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=1)
            self._roots = {k: v for k, v in self._roots.items() if k[1] == prompt}
            self._roots[key] = GuideState([], [], unpack(cache, 0, torch.ones(len(ids), dtype=torch.long)))
        return self._roots[key]

    @torch.inference_mode()
    def _score(self, prompt: str, sp: SamplingParams, reqs: list[ScoreRequest]) -> list[Answer]:
        """Score every stream of every request with both guides, reusing cached prefixes."""
        roles = (self.models.tuned, self.models.untuned)
        streams = [s for req in reqs for s in req.streams]
        encoded: dict[tuple[int, str], list[int]] = {}
        jobs: list[list[_GuideJob]] = []
        for g, role in enumerate(roles):
            root = self._guide_root(role, prompt)
            p_len = len(role.prompt_ids(prompt))
            per_role = []
            for s in streams:
                key = (id(role.tokenizer), s.text)
                if key not in encoded:  # guides sharing a tokenizer encode each text once
                    encoded[key] = role.response_ids(s.text)
                base = self._guide_base(g, s) or root
                per_role.append(self._guide_job(role, prompt, p_len, s, encoded[key], base))
            jobs.append(per_role)
        # Guides that are one model under two templates run in the same forward passes.
        by_model: dict[int, list[tuple[Role, _GuideJob]]] = {}
        for role, per_role in zip(roles, jobs):
            by_model.setdefault(id(role.model), []).extend((role, j) for j in per_role)
        for pairs in by_model.values():
            self._run_guide(pairs)
        out, n = [], 0
        new_states: dict[int, tuple[GuideState, GuideState]] = {}
        for req in reqs:
            counts, values = Counts(), []
            for s in req.streams:
                plus, minus = jobs[0][n], jobs[1][n]
                values.append(sum(plus.logps) - sum(minus.logps))
                # Work done: only the tokens each guide newly scored, not the reused prefix.
                counts.guide_tokens += len(plus.targets) + len(minus.targets)
                if not s.done:
                    new_states[s.id] = (_state(plus), _state(minus))
                n += 1
            out.append(Answer(values, counts=counts))
        # Every child of a parent is in this batch, so the parents' guide caches are spent.
        for s in streams:
            if s.parent not in new_states:
                self.guide_states.drop(s.parent)
        self.guide_states.add_group(new_states)
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
        targets = full[reuse + 1 :] + ([role.eos_id] if s.eos else [])
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

    # ---- EFT ----------------------------------------------------------------------------------

    @torch.inference_mode()
    def _eft(self, prompt: str, sp: SamplingParams, req: EftRequest) -> Stream:
        """Token-level EFT with each of the three models reading every token once (cached)."""
        roles = (self.models.strong, self.models.tuned, self.models.untuned)
        caches = [empty_cache() for _ in roles]
        feeds = [list(r.prompt_ids(prompt)) for r in roles]
        parent = Stream()
        new: list[int] = []
        hit_eos = False
        stop_ids = set(roles[0].stop_ids)
        for pos in range(sp.max_new_tokens):
            self.check_cancelled()
            logits = []
            for role, cache, feed in zip(roles, caches, feeds):
                x = torch.tensor([feed], device=role.loaded.device)
                out = role.model(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=1)
                logits.append(out.logits[0, -1].float())
            mixed = eft_logits(logits, req.beta).unsqueeze(0)
            if self.blank(parent, new):
                mixed = mask_eos(mixed, [0], roles[0].stop_ids)
            key = (noise_of(req, sp), req.slot, pos)
            (tok,) = choose_tokens(mixed, [key], sp.temperature, sp.top_p)
            new.append(tok)
            if tok in stop_ids:
                hit_eos = True
                break
            if self.stopped(parent, new):
                break
            feeds = [[tok]] * len(roles)
        n_new = len(new)
        if hit_eos:
            new = new[:-1]
        return self.finish_chunk(parent, new, hit_eos, sp.max_new_tokens, n_new)


def _state(job: _GuideJob) -> GuideState:
    """The stream's state for later children (EOS terms are never part of it: such streams are done)."""
    return GuideState(job.ids, job.logps[: len(job.ids)], job.kv)
