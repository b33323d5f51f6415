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
from .types import ROOT, Asked, Counts, EftRequest, SampleRequest, SamplingParams, ScoreRequest, Stream


class Sampler(Protocol):
    """Samples chunks of the strong model for sample requests, many requests in one running batch.

    The requests may come from several comparisons (prompts, sampling settings) at once.
    """

    hooks: Hooks

    def join(self, asked: list[Asked]) -> None:
        """Add new sample requests to the running batch; forget requests nobody asks for any more.

        `asked` holds every request still waiting, of every kind: prompts named there stay cached.
        """
        ...

    def decode_until_done(self) -> None:
        """Decode until some request has all its chunks (or the interrupt hook says stop)."""
        ...

    def finished(self, req: SampleRequest) -> Answer | None:
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
    sp: SamplingParams  # its comparison's settings: temperature, top-p, token budget
    new: list[int] = field(default_factory=list)
    visible: bool = False  # the answer has non-blank text (from then on it may end)
    eos: bool = False
    child: Stream | None = None


@dataclass
class _Flight:
    """A sample request being decoded, with the caches its unfinished children will keep."""

    request: SampleRequest
    prompt: str
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

    @property
    def hooks(self) -> Hooks:
        """The sampler's hooks (partial text, cancellation, interruption)."""
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
        return self.answer_ready([Asked(prompt, sp, r) for r in requests])

    def answer_ready(self, asked: list[Asked]) -> list[Answer | None]:
        """As `handle_ready`, for requests of any number of comparisons: their streams share steps."""
        answers: list[Answer | None] = [None] * len(asked)
        samples = [i for i, a in enumerate(asked) if isinstance(a.request, SampleRequest)]
        scores = [i for i, a in enumerate(asked) if isinstance(a.request, ScoreRequest)]
        # A scorer that takes several prompts at once scores every comparison's streams together.
        if hasattr(self.scorer, "score_many"):
            groups = [scores] if scores else []
        else:
            by_prompt: dict[str, list[int]] = {}
            for i in scores:
                by_prompt.setdefault(asked[i].prompt, []).append(i)
            groups = list(by_prompt.values())
        for group in groups:
            try:
                if hasattr(self.scorer, "score_many"):
                    got = self.scorer.score_many([(asked[i].prompt, asked[i].request) for i in group])
                else:
                    got = self.scorer.score(asked[group[0]].prompt, [asked[i].request for i in group])
                for i, ans in zip(group, got):
                    answers[i] = ans
            except Exception as exc:
                for i in group:
                    answers[i] = Answer(error=exc)
        for i, a in enumerate(asked):
            if answers[i] is None and i not in samples:
                answers[i] = self._other(a.prompt, a.sp, a.request)
        if hasattr(self.scorer, "keep_prompts"):
            self.scorer.keep_prompts({a.prompt for a in asked})
        try:
            self.scorer.sampling({p.id for i in samples for p in asked[i].request.parents})
            self.sampler.join(asked)
            if all(a is None for a in answers) and samples:
                self.sampler.decode_until_done()
        except Cancelled:
            self.sampler.reset()
            raise
        except Exception as exc:
            self.sampler.reset()
            for i in samples:
                answers[i] = Answer(error=exc)
            return answers
        for i in samples:
            answers[i] = self.sampler.finished(asked[i].request)
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
            self._roots[key] = self._prefill_strong(strong.prompt_ids(prompt))
        return self._roots[key]

    def _keep_roots(self, prompts: set[str]) -> None:
        """Forget the prefilled prompts of comparisons no longer running."""
        for key in [k for k in self._roots if k[1] not in prompts]:
            self._release_root(self._roots.pop(key))

    def _release_root(self, state: StrongState) -> None:
        """A forgotten root's memory goes with its tensors (a llama.cpp sampler frees its sequence)."""

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
    def join(self, asked: list[Asked]) -> None:
        """Add new sample requests to the running batch; drop requests nobody asks for any more."""
        samples = [a for a in asked if isinstance(a.request, SampleRequest)]
        wanted = {id(a.request) for a in samples}
        gone = [f for f in self._flight if id(f.request) not in wanted]
        if gone:
            self._flight = [f for f in self._flight if id(f.request) in wanted]
            self._remove_rows({id(r) for f in gone for r in f.rows})
        prompts = {a.prompt for a in asked}
        self._keep_roots(prompts)
        self.strong_states.keep_prompts(prompts)  # a finished search's last unkept beams
        known = {id(f.request) for f in self._flight}
        new_rows: list[_Row] = []
        states: list[StrongState] = []
        for a in samples:
            req, sp = a.request, a.sp
            if id(req) in known:
                continue
            seed = noise_of(req, sp)
            rows = [_Row(p, s, req.max_new, seed, sp) for p, s in zip(req.parents, req.slots)]
            flight = _Flight(req, a.prompt, rows)
            self._flight.append(flight)
            parents = {r.parent.id for r in flight.rows}
            for r in flight.rows:
                if r.max_new <= 0:
                    r.child = r.parent.extend(r.parent.text, r.parent.token_ids, 0, False, sp.max_new_tokens)
                else:
                    new_rows.append(r)
                    states.append(self._strong_state(a.prompt, r.parent))
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

    def finished(self, req: SampleRequest) -> Answer | None:
        """The answer of a request whose rows have all ended their chunk, else None."""
        flight = next(f for f in self._flight if f.request is req)
        if any(r.child is None for r in flight.rows):
            return None
        self._flight.remove(flight)
        self.strong_states.add_group(flight.stored, flight.prompt)
        counts = Counts(strong_tokens=sum(r.child.n_tokens - r.parent.n_tokens for r in flight.rows))
        return Answer([r.child for r in flight.rows], counts=counts)

    @torch.inference_mode()
    def decode_until_done(self) -> None:
        """Decode one token per live row per step until some request has all its chunks.

        The interrupt hook, polled after each step, ends the call early (a comparison waits to join).
        """
        while self._batch is not None:
            self.check_cancelled()
            self._step()
            self._report_partials()
            if any(all(r.child is not None for r in f.rows) for f in self._flight):
                return
            if self.hooks.interrupt is not None and self.hooks.interrupt():
                return

    def _step(self) -> None:
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
        toks = _choose(mask_eos(logits, blank, strong.stop_ids), keys, [r.sp for r in batch.rows])
        done: set[int] = set()
        for b, (r, tok) in enumerate(zip(batch.rows, toks)):
            r.new.append(tok)
            if tok in stop_ids:
                r.eos = True
            elif not self.stopped(r.parent, r.new) and len(r.new) < r.max_new:
                continue
            done.add(id(r))
            r.child = self._child(r)
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

    def _child(self, r: _Row) -> Stream:
        """The finished chunk as a stream, exactly as the reference builds it."""
        n_new = len(r.new)
        new = r.new[:-1] if r.eos else r.new  # EOS is counted as sampled but is not part of the text
        return self.finish_chunk(r.parent, new, r.eos, r.sp.max_new_tokens, n_new)

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


def _choose(logits: torch.Tensor, keys: list[tuple[int, int, int]], sps: list[SamplingParams]) -> list[int]:
    """One token per row, each row with its own comparison's temperature and top-p."""
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
