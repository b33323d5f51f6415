"""The fast engine: a sampler and a scorer joined by one small engine.

`JoinedEngine` answers the methods' requests with any `Sampler` (strong model) and any scorer
(guide pair): sample requests of every method join one running batch, scores are answered at
once. `TorchSampler` is the batched, cached transformers sampler: the prompt is prefilled once;
each stream keeps its KV cache, so a chunk runs only its new tokens; all live streams of all
requests decode in one batch; finished ones leave it. `FastEngine(models)` is the default pairing:
`TorchSampler` with the `CachedScorer`. It answers exactly what the reference engine answers
(same texts; scores equal up to float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..backends.roles import Role
from .cached_scorer import CachedScorer, StateStore
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
from .kv import KV, empty_cache, pack, select_rows, unpack
from .sampling import choose_tokens, mask_eos
from .types import ROOT, Counts, EftRequest, SampleRequest, SamplingParams, ScoreRequest, Stream


class Sampler(Protocol):
    """Samples chunks of the strong model for sample requests, many requests in one running batch."""

    hooks: Hooks

    def join(self, prompt: str, sp: SamplingParams, reqs: list[SampleRequest]) -> None:
        """Add new requests to the running batch; forget requests nobody asks for any more."""
        ...

    def decode_until_done(self, sp: SamplingParams) -> None:
        """Decode until some request has all its chunks."""
        ...

    def finished(self, req: SampleRequest, sp: SamplingParams) -> Answer | None:
        """The answer of a finished request (taken out of the batch), else None."""
        ...

    def reset(self) -> None:
        """Forget every request in flight."""
        ...


class Scorer(Protocol):
    """Scores streams with the guide pair."""

    def score(self, prompt: str, reqs: list[ScoreRequest]) -> list[Answer]:
        """One answer (scores, counts) per request."""
        ...

    def sampling(self, parents: set[int]) -> None:
        """Told which streams are being extended (a caching scorer may release their siblings)."""
        ...


@dataclass
class StrongState:
    """A stream's strong-model cache over prompt + response minus its last token, which is pending."""

    kv: KV
    pending: int  # next token to feed (the last one sampled, or the prompt's last token)
    length: int  # position of the pending token


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


class JoinedEngine:
    """Joins a sampler and a scorer: any sampler works with any scorer."""

    def __init__(self, models: Models, sampler: Any, scorer: Any) -> None:
        self.models = models
        self.sampler = sampler
        self.scorer = scorer
        self._flight_key: tuple[str, SamplingParams] | None = None

    @property
    def hooks(self) -> Hooks:
        """The sampler's hooks (partial text, cancellation)."""
        return self.sampler.hooks

    @hooks.setter
    def hooks(self, value: Hooks) -> None:
        self.sampler.hooks = value

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
            self.sampler.reset()
            self._flight_key = (prompt, sp)
        answers: list[Answer | None] = [None] * len(requests)
        samples = [i for i, r in enumerate(requests) if isinstance(r, SampleRequest)]
        scores = [i for i, r in enumerate(requests) if isinstance(r, ScoreRequest)]
        if scores:
            try:
                for i, ans in zip(scores, self.scorer.score(prompt, [requests[i] for i in scores])):
                    answers[i] = ans
            except Exception as exc:
                for i in scores:
                    answers[i] = Answer(error=exc)
        for i, req in enumerate(requests):
            if answers[i] is None and i not in samples:
                answers[i] = self._other(prompt, sp, req)
        try:
            reqs = [requests[i] for i in samples]
            self.scorer.sampling({p.id for r in reqs for p in r.parents})
            self.sampler.join(prompt, sp, reqs)
            if all(a is None for a in answers):
                self.sampler.decode_until_done(sp)
        except Cancelled:
            self.sampler.reset()
            raise
        except Exception as exc:
            self.sampler.reset()
            for i in samples:
                answers[i] = Answer(error=exc)
            return answers
        for i in samples:
            answers[i] = self.sampler.finished(requests[i], sp)
        return answers

    def _other(self, prompt: str, sp: SamplingParams, req: Any) -> Answer:
        """EFT needs the strong model's and both guides' logits: only a sampler that has them runs it."""
        try:
            if isinstance(req, EftRequest):
                check_eft(self.models)
                eft = getattr(self.sampler, "eft", None)
                if eft is None:
                    raise SearchError("eft needs local logits of all three models; this sampler has none")
                stream = eft(prompt, sp, req)
                counts = Counts(strong_tokens=stream.n_tokens, guide_tokens=2 * stream.n_tokens)
                return Answer([stream], counts=counts)
            raise TypeError(f"unknown request {type(req).__name__}")
        except Exception as exc:
            return Answer(error=exc)


class TorchSampler(LocalSampling):
    """The strong model as a transformers model: one batched, cached decode loop over every stream."""

    def __init__(self, models: Models) -> None:
        self.models = models
        self.hooks = Hooks()
        self.strong_states = StateStore()
        self._roots: dict[tuple[int, str], StrongState] = {}  # (role id, prompt) -> prefilled prompt
        self.reset()

    def reset(self) -> None:
        """Forget every request being decoded."""
        self._flight: list[_Flight] = []
        self._batch: _Batch | None = None

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

    @torch.inference_mode()
    def join(self, prompt: str, sp: SamplingParams, reqs: list[SampleRequest]) -> None:
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

    def finished(self, req: SampleRequest, sp: SamplingParams) -> Answer | None:
        """The answer of a request whose rows have all ended their chunk, else None."""
        flight = next(f for f in self._flight if f.request is req)
        if any(r.child is None for r in flight.rows):
            return None
        self._flight.remove(flight)
        self.strong_states.add_group(flight.stored)
        counts = Counts(strong_tokens=sum(r.child.n_tokens - r.parent.n_tokens for r in flight.rows))
        return Answer([r.child for r in flight.rows], counts=counts)

    @torch.inference_mode()
    def decode_until_done(self, sp: SamplingParams) -> None:
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
        logits = self._forward()
        keys = [(r.seed, r.slot, r.parent.n_tokens + len(r.new)) for r in batch.rows]
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
                flight.stored[r.child.id] = self._row_state(b, tok)
        self._advance(toks)
        if done:
            self._remove_rows(done)

    def _forward(self) -> torch.Tensor:
        """Feed every row's pending token; the next-token logits, one row per stream (B, V)."""
        batch = self._batch
        ones = torch.ones((len(batch.rows), 1), dtype=batch.mask.dtype, device=batch.mask.device)
        batch.mask = torch.cat([batch.mask, ones], dim=1)
        out = self._strong().model(
            input_ids=batch.pending,
            attention_mask=batch.mask,
            position_ids=batch.positions,
            past_key_values=batch.cache,
            use_cache=True,
        )
        return out.logits[:, -1]

    def _row_state(self, b: int, tok: int) -> StrongState:
        """Row b's cache as a stream state, `tok` (just sampled) pending."""
        batch = self._batch
        return StrongState(
            unpack(batch.cache, b, batch.mask[b]), pending=tok, length=int(batch.positions[b, 0]) + 1
        )

    def _advance(self, toks: list[int]) -> None:
        """The sampled tokens become the rows' pending tokens, one position on."""
        batch = self._batch
        batch.pending = torch.tensor([[t] for t in toks], device=batch.pending.device)
        batch.positions = batch.positions + 1

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

    @torch.inference_mode()
    def eft(self, prompt: str, sp: SamplingParams, req: EftRequest) -> Stream:
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


class FastEngine(JoinedEngine):
    """The default engine: the batched torch sampler with the cached scorer (or the one given)."""

    def __init__(self, models: Models, scorer: Any = None) -> None:
        super().__init__(models, TorchSampler(models), scorer if scorer is not None else CachedScorer(models))

    @property
    def strong_states(self) -> StateStore:
        """The sampler's cached strong-model states."""
        return self.sampler.strong_states

    @property
    def guide_states(self) -> StateStore:
        """The scorer's cached guide states."""
        return self.scorer.guide_states
