"""The fake engine: scripted texts and scores, deterministic, no model. For tests that are not about models.

A preset role with source `fake:` (options after the colon, comma-separated) samples words instead
of tokens: the word at each position is a hash of (seed, slot, position), so the same request gives
the same text, chunk by chunk exactly as a whole, and every method gets its own text under
independent noise. The fake scorer's score of a text is a hash of its words. Options:

- `same`: every stream writes the same words whatever its seed and slot (every column is a twin);
- `fail`: every sample request fails (a method's failure, as a broken model gives);
- `delay=S`: each decoding step writes one word and sleeps S seconds (progress, cancellation,
  deadlines, queues); a baseline's words so far are reported to the partial-text hook at each step,
  as the model samplers report theirs, so streamed answers stream;
- `eos=P`: chance that an answer ends at each word once it has three (default 0.15).

It runs through the real search: methods, driver, shared loop and `GuidedEngine`; only the model is
scripted. Tests about models use the real tiny and offline models instead.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from ..config import RoleSpec
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
    ScorerAbilities,
    ScoreRequest,
    SearchError,
    Stream,
)

FAKE_PREFIX = "fake"
WORDS = (
    "the film was quite good and the cast plays well while a story moves fast but some scenes "
    "feel long yet every minute shows care so it ends with warmth and light in a small town"
).split()


@dataclass(frozen=True)
class FakeOptions:
    """What a `fake:` source asks for."""

    same: bool = False
    fail: bool = False
    delay: float = 0.0
    eos: float = 0.15

    @classmethod
    def parse(cls, source: str) -> FakeOptions:
        """Options from 'fake:same,delay=0.01' (ValueError naming what is wrong)."""
        _, _, rest = source.partition(":")
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, raw = part.partition("=")
            if key in ("same", "fail") and not eq:
                values[key] = True
            elif key in ("delay", "eos") and eq:
                try:
                    values[key] = float(raw)
                except ValueError:
                    raise ValueError(f"fake source {source!r}: {key} must be a number") from None
            elif key != "words":
                raise ValueError(
                    f"fake source {source!r}: unknown option {part!r} (same, fail, delay=S, eos=P)"
                )
        return cls(**values)


@dataclass
class FakeRole:
    """A scripted model in a role."""

    spec: RoleSpec
    options: FakeOptions = field(default_factory=FakeOptions)

    @property
    def context_limit(self) -> int | None:
        """No limit: the fake model reads anything."""
        return None

    def count_tokens(self, prompt: str, text: str) -> tuple[int, int]:
        """Words of the prompt and of the answer."""
        return len(prompt.split()), len(text.split())

    def describe(self) -> str:
        """The source as written."""
        return self.spec.source


def _hash(*parts: Any) -> int:
    """A 64-bit hash of the parts (stable across processes, unlike hash())."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _text(ids: list[int]) -> str:
    """The words of the ids, each after a space."""
    return "".join(" " + WORDS[i] for i in ids)


class FakeSampler:
    """Samples words for sample requests; many requests (of many comparisons) at once."""

    abilities = SamplerAbilities(eft=False)

    def __init__(self, role: FakeRole) -> None:
        self.role = role
        self.hooks = Hooks()
        # id(request) -> [request, settings, steps left, a baseline's words so far (for partials)]
        self._waiting: dict[int, list[Any]] = {}
        self._done: dict[int, Answer] = {}

    @property
    def stops(self) -> tuple[str, ...]:
        """The role's stop strings."""
        return tuple(self.role.spec.stop)

    def join(self, asked: list[Asked]) -> None:
        """Take new sample requests; forget those nobody asks for any more."""
        wanted = {id(a.request): a for a in asked if isinstance(a.request, SampleRequest)}
        self._waiting = {k: v for k, v in self._waiting.items() if k in wanted}
        self._done = {k: v for k, v in self._done.items() if k in wanted}
        for key, a in wanted.items():
            if key not in self._waiting and key not in self._done:
                self._waiting[key] = [a.request, a.sp, a.request.max_new, []]

    def decode_until_done(self) -> None:
        """One word per step for every waiting request, until one has all its chunks (or interrupted)."""
        while self._waiting:
            self.hooks.check_cancelled()
            if self.role.options.delay:
                time.sleep(self.role.options.delay)
            for item in self._waiting.values():
                item[2] = item[2] - 1 if self.role.options.delay else 0
            self._report_partials()
            for key in [k for k, item in self._waiting.items() if item[2] <= 0]:
                req, sp, _, _ = self._waiting.pop(key)
                self._done[key] = self._answer(req, sp)
            if self._done:
                return
            if self.hooks.interrupt is not None and self.hooks.interrupt():
                return

    def _report_partials(self) -> None:
        """Tell the hook the words so far of every single-stream answer still writing (a baseline),
        one word a step, as the model samplers report theirs (streaming and progress)."""
        if self.hooks.partial is None:
            return
        for req, sp, left, words in self._waiting.values():
            if len(req.parents) != 1 or req.parents[0].id != ROOT.id:
                continue
            more, _ = self._words(self._seed(req, sp), req.slots[0], words, req.max_new - left - len(words))
            words.extend(more)
            if words:
                self.hooks.partial(req, [_text(words)])

    def _answer(self, req: SampleRequest, sp: SamplingParams) -> Answer:
        """Every chunk of a request, or the scripted failure."""
        if self.role.options.fail:
            return Answer(error=RuntimeError("the fake model failed (scripted)"))
        streams = [self._chunk(parent, slot, req, sp) for parent, slot in zip(req.parents, req.slots)]
        counts = Counts(strong_tokens=sum(c.n_tokens - p.n_tokens for c, p in zip(streams, req.parents)))
        return Answer(streams, counts=counts)

    def _chunk(self, parent: Stream, slot: int, req: SampleRequest, sp: SamplingParams) -> Stream:
        """Up to max_new words after the parent; an answer may end once it has three words."""
        n = min(req.max_new, sp.max_new_tokens - parent.n_tokens)
        more, eos = self._words(self._seed(req, sp), slot, list(parent.token_ids), n)
        ids = list(parent.token_ids) + more
        n_new = len(ids) - len(parent.token_ids) + (1 if eos else 0)
        return parent.extend(_text(ids), tuple(ids), n_new, eos, sp.max_new_tokens)

    def _seed(self, req: SampleRequest, sp: SamplingParams) -> int:
        """The request's noise seed (the method's, else the comparison's)."""
        return sp.seed if req.seed is None else req.seed

    def _words(self, seed: int, slot: int, before: list[int], n: int) -> tuple[list[int], bool]:
        """Up to n word ids after `before`, and whether the answer ended (EOS) first."""
        if self.role.options.same:
            seed, slot = 0, 0
        out: list[int] = []
        for _ in range(max(0, n)):
            pos = len(before) + len(out)
            h = _hash(seed, slot, pos)
            if pos >= 3 and (h % 1000) / 1000 < self.role.options.eos:
                return out, True
            out.append(h % len(WORDS))
        return out, False

    def finished(self, req: SampleRequest) -> Answer | None:
        """The answer of a request once written."""
        return self._done.pop(id(req), None)

    def reset(self) -> None:
        """Forget every request."""
        self._waiting.clear()
        self._done.clear()

    def eft(self, prompt: str, sp: SamplingParams, req: EftRequest) -> Stream:
        """No logits here."""
        raise SearchError("eft needs local logits of all three models; the fake model has none")


class FakeScorer:
    """Scores a text by a hash of its words: the same text always gets the same score."""

    abilities = ScorerAbilities(remote=False)

    def __init__(self, tuned: FakeRole, untuned: FakeRole) -> None:
        self.tuned = tuned
        self.untuned = untuned

    def score_many(self, items: list[tuple[str, ScoreRequest]]) -> list[Answer]:
        """One answer per request: a score per stream, two guide tokens per word."""
        out = []
        for _, req in items:
            values = [
                sum((_hash("score", w) % 2001 - 1000) / 1000 for w in s.text.split()) for s in req.streams
            ]
            words = sum(len(s.text.split()) for s in req.streams)
            out.append(Answer(values, counts=Counts(guide_tokens=2 * words)))
        return out

    def sampling(self, parents: set[int]) -> None:
        """Nothing cached."""

    def keep_prompts(self, prompts: set[str]) -> None:
        """Nothing cached."""
