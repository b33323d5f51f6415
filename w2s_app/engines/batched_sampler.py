"""The batched strong-model sampler: one decode loop over every live stream, on any decoder.

The loop owns what sampling means (keyed noise per (seed, slot, position), end-of-answer masked while
an answer is blank, control tokens never drawn, stop strings, chunk lengths, budgets); a `Decoder`
owns how the model runs (transformers with packed KV caches, or llama.cpp with KV sequences). The
prompt is prefilled once; each stream keeps its cache, so a chunk runs only its new tokens; all live
streams of all requests decode in one batch; finished ones leave it. With the torch decoder it answers
exactly what the reference engine answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..backends.roles import Role
from ..contracts import (
    ROOT,
    Answer,
    Asked,
    Counts,
    EftRequest,
    Hooks,
    SamplerAbilities,
    SampleRequest,
    SamplingParams,
    SearchError,
    Stream,
)
from ..contracts.stops import retry_slot
from .decoder import Decoder
from .states import StrongState
from .stream_text import StreamText
from .strong_starts import StrongStarts
from .token_choice import choose_rows, mask_tokens


@dataclass
class _Row:
    """One stream being sampled in the batch."""

    parent: Stream
    slot: int
    max_new: int
    seed: int
    sp: SamplingParams  # its comparison's settings: temperature, top-p, token budget
    new: list[int] = field(default_factory=list)
    visible: bool = False  # the answer has non-blank text (from then on it may end)
    attempt: int = 0  # restarts after a stop string met before any text (fresh noise each)
    eos: bool = False
    child: Stream | None = None


@dataclass
class _Flight:
    """A sample request being decoded, with the caches its unfinished children will keep."""

    request: SampleRequest
    prompt: str
    rows: list[_Row]
    stored: dict[int, StrongState] = field(default_factory=dict)


class BatchedSampler:
    """Samples chunks for sample requests of any number of comparisons, in one batch on a decoder."""

    def __init__(self, role: Role, decoder: Decoder, eft: Any = None) -> None:
        """`eft` (a TorchEft over the three local models) answers EFT requests; None: this sampler has none."""
        self.role = role
        self.text = StreamText(role)
        self.decoder = decoder
        self._eft = eft
        self.abilities = SamplerAbilities(eft=eft is not None)
        self.hooks = Hooks()
        self.starts = StrongStarts(role, decoder)  # the states chunks start from, kept or prefilled
        self._flight: list[_Flight] = []
        self._rows: list[_Row] = []  # the decoder's batch rows, in order

    @property
    def stops(self) -> tuple[str, ...]:
        """The strong model's stop strings."""
        return tuple(self.role.spec.stop)

    def reset(self) -> None:
        """Forget every request being decoded (states kept for their unfinished requests go too)."""
        with self.decoder.lock():
            for flight in self._flight:
                for state in flight.stored.values():
                    self.decoder.release(state)
            self._flight = []
            self._rows = []
            self.decoder.reset()

    # ---- requests -------------------------------------------------------------------------------

    @torch.inference_mode()
    def join(self, asked: list[Asked]) -> None:
        """Add new sample requests to the running batch; drop requests nobody asks for any more."""
        with self.decoder.lock():
            try:
                self._join(asked)
            finally:
                self.starts.release_unused()

    def _join(self, asked: list[Asked]) -> None:
        samples = [a for a in asked if isinstance(a.request, SampleRequest)]
        wanted = {id(a.request) for a in samples}
        gone = [f for f in self._flight if id(f.request) not in wanted]
        if gone:
            self._flight = [f for f in self._flight if id(f.request) in wanted]
            self._remove({id(r) for f in gone for r in f.rows})
        self.starts.keep_prompts({a.prompt for a in asked})
        known = {id(f.request) for f in self._flight}
        new_rows: list[_Row] = []
        states: list[StrongState] = []
        for a in samples:
            req, sp = a.request, a.sp
            if id(req) in known:
                continue
            seed = sp.seed if req.seed is None else req.seed
            rows = [_Row(p, s, req.max_new, seed, sp) for p, s in zip(req.parents, req.slots)]
            self._flight.append(_Flight(req, a.prompt, rows))
            for r in rows:
                if r.max_new <= 0:
                    r.child = r.parent.extend(r.parent.text, r.parent.token_ids, 0, False, sp.max_new_tokens)
                else:
                    new_rows.append(r)
                    states.append(self.starts.of(a.prompt, r.parent))
            # The parents' siblings were not kept: no request can name them again.
            self.starts.kept.release_groups({r.parent.id for r in rows}, keep=set())
        if new_rows:
            self.decoder.add_rows(states)
            self._rows += new_rows

    def _remove(self, row_ids: set[int]) -> None:
        """Take rows (by id of the row object) out of the batch."""
        gone = {b for b, r in enumerate(self._rows) if id(r) in row_ids}
        if gone:
            self.decoder.remove_rows(gone)
            self._rows = [r for b, r in enumerate(self._rows) if b not in gone]

    def finished(self, req: SampleRequest) -> Answer | None:
        """The answer of a request whose rows have all ended their chunk, else None."""
        flight = next(f for f in self._flight if f.request is req)
        if any(r.child is None for r in flight.rows):
            return None
        self._flight.remove(flight)
        self.starts.kept.add_group(flight.stored, flight.prompt)
        counts = Counts(strong_tokens=sum(r.child.n_tokens - r.parent.n_tokens for r in flight.rows))
        return Answer([r.child for r in flight.rows], counts=counts)

    # ---- decoding -------------------------------------------------------------------------------

    @torch.inference_mode()
    def decode_until_done(self) -> None:
        """Decode one token per live row per step until some request has all its chunks.

        The interrupt hook, polled after each step, ends the call early (a comparison waits to join).
        """
        with self.decoder.lock():
            while self._rows:
                self.hooks.check_cancelled()
                self._step()
                self._report_partials()
                if any(all(r.child is not None for r in f.rows) for f in self._flight):
                    return
                if self.hooks.interrupt is not None and self.hooks.interrupt():
                    return

    def _step(self) -> None:
        """One batched forward pass of the strong model and one token for every live row."""
        logits = self.decoder.forward()
        keys = [(r.seed, retry_slot(r.slot, r.attempt), r.parent.n_tokens + len(r.new)) for r in self._rows]
        blank = []
        for b, r in enumerate(self._rows):
            r.visible = r.visible or not self.text.blank(r.parent, r.new)
            if not r.visible:
                blank.append(b)
        logits = mask_tokens(logits, blank, self.role.stop_ids)
        logits = mask_tokens(logits, range(len(self._rows)), self.role.never_ids)
        toks = choose_rows(logits, keys, [r.sp for r in self._rows])
        done: set[int] = set()
        again: list[_Row] = []
        for b, (r, tok) in enumerate(zip(self._rows, toks)):
            r.new.append(tok)
            end = self.text.end(r.parent, r.new, r.attempt)
            r.eos = end == "eos"
            if end == "restart":
                again.append(r)
                continue
            if end is None and len(r.new) < r.max_new:
                continue
            done.add(id(r))
            r.child = self._child(r)
            if not r.child.done:
                # Chunk ended by its length: this row's cache is the child's, its last token pending.
                flight = next(f for f in self._flight if any(x is r for x in f.rows))
                flight.stored[r.child.id] = self.decoder.keep_row(b, tok)
        self.decoder.advance(toks)
        if done:
            self._remove(done)
        if again:
            self._restart(again)

    def _restart(self, rows: list[_Row]) -> None:
        """Start these rows' chunks again from their parents, with the next attempt's noise."""
        self._remove({id(r) for r in rows})
        states = []
        for r in rows:
            flight = next(f for f in self._flight if any(x is r for x in f.rows))
            states.append(self.starts.of(flight.prompt, r.parent))
            r.new, r.visible, r.attempt = [], False, r.attempt + 1
        self.decoder.add_rows(states)
        self._rows += rows
        self.starts.release_unused()

    def _report_partials(self) -> None:
        """Tell the hook the text so far of every single-stream answer still decoding (baseline)."""
        if self.hooks.partial is None:
            return
        for f in self._flight:
            if len(f.rows) == 1 and f.rows[0].parent.id == ROOT.id and f.rows[0].child is None:
                row = f.rows[0]
                self.hooks.partial(f.request, [self.role.decode(list(row.parent.token_ids) + row.new)])

    def _child(self, r: _Row) -> Stream:
        """The finished chunk as a stream, exactly as the reference builds it."""
        return self.text.finish_chunk(r.parent, r.new, r.eos, r.sp.max_new_tokens)

    def eft(self, prompt: str, sp: SamplingParams, req: EftRequest) -> Stream:
        """A whole EFT answer, from the three local models' logits."""
        if self._eft is None:
            raise SearchError("eft needs the strong model and both guides in transformers (W2S_ENGINE=fast)")
        return self._eft.sample(prompt, sp, req, self.hooks)
