"""The guide pair scored by llama.cpp in-process: the cached scorer's contract on KV sequences.

Same scores as `CachedScorer` (log G+(y | T+(x)) - log G-(y | T-(x)) over each guide's tokens of
the response text, the EOS term only for answers ended by EOS when the role scores it), same state
lifetimes (`StateStore`: a stream's guide state lives while it can still become a parent). Each
guide is a llama.cpp context over one loaded GGUF model (the tuned one with its LoRA adapter when
the pair is an adapter on and off); a stream's state is a KV sequence there. A stream copies the
cells of its base (its own earlier state, its parent's, or the prefilled prompt) up to their
longest common token prefix (shared cells, no memory copied) and decodes only its new tokens;
all streams of a call decode in the same `llama_decode` batches, with logits for every scored
position. The values differ from float32 transformers by llama.cpp's quantized arithmetic
(tests/test_llamacpp_scorer.py measures how much).

Token ids and templates come from the roles' tokenizers (llama.cpp's own, backends/gguf_tokenizer.py).
Contexts are shared (backends/llamacpp.py): guides on one GGUF and adapter, in any preset, use one,
which hands out the sequence ids.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from ..backends import llamacpp
from ..backends.adapters import resolve_adapter
from ..backends.llamacpp import LlamaContext
from ..backends.local import ModelLoadError
from ..backends.roles import Models, Role
from ..contracts import Answer, ScorerAbilities, ScoreRequest, Stream
from .states import StateStore, pair_answers

ROOTS_KEPT = 32  # prefilled prompts kept per guide (comparisons running together each need theirs)
GUIDE_CTX = 8192  # KV cells per guide context, shared by all its sequences


@dataclass
class SeqState:
    """One guide's view of a stream: response token ids, their log-probs, its KV sequence."""

    ids: list[int]
    logps: list[float]
    seq: int
    guide: int  # index into the scorer's guides: whose context holds the sequence


@dataclass
class _Job:
    """One stream scored by one guide: copy `reuse` cached positions into `seq`, then feed `feed`."""

    stream: Stream
    ids: list[int]
    reuse: int
    feed: list[int]
    targets: list[int]  # the token each fed position predicts (the last may be the EOS term)
    logps: list[float]
    seq: int


@dataclass
class _Guide:
    """A guide role, its (shared) llama.cpp context and this scorer's prefilled prompts there."""

    role: Role
    ctx: LlamaContext
    roots: dict[str, SeqState] = field(default_factory=dict)


class LlamaCppScorer:
    """Scores streams with the guide pair in llama.cpp, reusing each stream's cached prefix."""

    abilities = ScorerAbilities(remote=False)

    def __init__(self, models: Models, contexts: tuple[LlamaContext, LlamaContext] | None = None) -> None:
        """`contexts`: the guides' contexts (default: the process's shared ones for their GGUF and adapter)."""
        self.models = models
        contexts = contexts or guide_contexts(models)
        self.guides = [_Guide(role, ctx) for role, ctx in zip((models.tuned, models.untuned), contexts)]
        self.guide_states = StateStore(on_drop=self._free_pair)  # value: (tuned, untuned) SeqState
        self.lock = threading.Lock()

    def keep_prompts(self, prompts: set[str]) -> None:
        """Only these comparisons still run: the others' states and prefilled prompts can go."""
        with self.lock:
            self.guide_states.keep_prompts(prompts)
            for g in self.guides:
                for prompt in [p for p in g.roots if p not in prompts]:
                    self._free(g.roots.pop(prompt))

    def sampling(self, parents: set[int]) -> None:
        """The given streams are being extended: their siblings can never be a parent again."""
        with self.lock:
            self.guide_states.release_groups(parents, keep=parents)

    def score_many(self, items: list[tuple[str, ScoreRequest]]) -> list[Answer]:
        """Score every stream of every (prompt, request) with both guides, reusing cached prefixes; the
        streams of every prompt share the decode batches."""
        with self.lock:
            streams = [(prompt, s) for prompt, req in items for s in req.streams]
            encoded: dict[tuple[int, str], list[int]] = {}  # guides sharing a tokenizer encode once
            jobs = []
            for g in range(len(self.guides)):
                role = self.guides[g].role
                per_guide = []
                for prompt, s in streams:
                    key = (id(role.tokenizer), s.text)
                    if key not in encoded:
                        encoded[key] = role.response_ids(s.text)
                    per_guide.append(self._plan(g, prompt, s, encoded[key]))
                jobs.append(per_guide)
            for g, per_guide in zip(self.guides, jobs):
                self._run(g, per_guide)
            return self._finish(items, streams, jobs)

    def _plan(self, g: int, prompt: str, s: Stream, ids: list[int]) -> _Job:
        """Pick the base state, copy its shared prefix into a fresh sequence, list what to feed."""
        guide = self.guides[g]
        role = guide.role
        seq = self._take(guide)  # first: taking may evict an old prefilled prompt, never the base
        own, parent = self.guide_states.get(s.id), self.guide_states.get(s.parent) if s.parent else None
        base = own[g] if own else parent[g] if parent else self._root(guide, g, prompt)
        common = 0
        for a, b in zip(base.ids, ids):
            if a != b:
                break
            common += 1
        p_ids = role.prompt_ids(prompt)
        # Re-feed the last shared token: its output is the distribution of the first new token.
        reuse = len(p_ids) + common - 1
        full = p_ids + ids
        eos = [role.eos_id] if s.eos and role.spec.score_eos else []
        guide.ctx.copy(base.seq, seq, end=reuse)
        return _Job(s, ids, reuse, full[reuse:], full[reuse + 1 :] + eos, list(base.logps[:common]), seq)

    def _root(self, guide: _Guide, g: int, prompt: str) -> SeqState:
        """A guide's templated prompt, prefilled once into its own sequence."""
        if prompt not in guide.roots:
            if len(guide.roots) >= ROOTS_KEPT:
                self._free(guide.roots.pop(next(iter(guide.roots))))
            seq = self._take(guide)
            ids = guide.role.prompt_ids(prompt)
            guide.ctx.decode([(t, i, seq, False) for i, t in enumerate(ids)])
            guide.roots[prompt] = SeqState([], [], seq, g)
        return guide.roots[prompt]

    def _run(self, guide: _Guide, jobs: list[_Job]) -> None:
        """Decode every job's feed in shared batches; log-probs of each fed position's target."""
        items, owners = [], []
        for job in jobs:
            for j, tok in enumerate(job.feed):
                wants = j < len(job.targets)
                items.append((tok, job.reuse + j, job.seq, wants))
                if wants:
                    owners.append((job, job.targets[j]))
        done = 0
        for start in range(0, len(items), guide.ctx.n_batch):
            rows = guide.ctx.decode(items[start : start + guide.ctx.n_batch])
            if not len(rows):
                continue
            part = owners[done : done + len(rows)]
            done += len(rows)
            top = rows.max(axis=1, keepdims=True)
            lse = (top[:, 0] + np.log(np.exp(rows - top).sum(axis=1))).astype(np.float64)
            picked = rows[np.arange(len(rows)), [t for _, t in part]].astype(np.float64)
            for (job, _), lp in zip(part, picked - lse):
                job.logps.append(float(lp))

    def _finish(
        self, items: list[tuple[str, ScoreRequest]], streams: list[tuple[str, Stream]], jobs: list[list[_Job]]
    ) -> list[Answer]:
        """Scores per request; keep the states of streams that may become parents, as CachedScorer does."""

        def keep(s: Stream, plus: _Job, minus: _Job) -> tuple[SeqState, ...] | None:
            pair = tuple(
                SeqState(j.ids, j.logps[: len(j.ids)], j.seq, g) for g, j in enumerate((plus, minus))
            )
            if s.done:
                self._free_pair(pair)  # a finished stream is never a parent
                return None
            return pair

        out, groups = pair_answers(items, jobs, keep)
        self.guide_states.settle(groups, [s.parent for _, s in streams])
        return out

    # Sequence ids come from the shared context; a state, a root or a running job owns each id in use.

    def _take(self, guide: _Guide) -> int:
        if not guide.ctx.available_ids() and guide.roots:
            self._free(guide.roots.pop(next(iter(guide.roots))))  # an old prompt is cheap to prefill again
        return guide.ctx.acquire()

    def _free(self, state: SeqState) -> None:
        self.guides[state.guide].ctx.free(state.seq)

    def _free_pair(self, pair: tuple[SeqState, SeqState]) -> None:
        for state in pair:
            self._free(state)


def guide_contexts(models: Models, threads: int | None = None) -> tuple[LlamaContext, LlamaContext]:
    """The shared llama.cpp contexts of a GGUF guide pair (the tuned one with its adapter, when on);
    `threads`: W2S_THREADS (None: every core)."""
    out = []
    for role in (models.tuned, models.untuned):
        if role.loaded.gguf is None:
            raise ModelLoadError(
                f"the llama.cpp scorer runs GGUF guides only; {role.spec.source!r} is not one"
            )
        adapter = resolve_adapter(role.spec.adapter) if role.spec.adapter and role.spec.use_adapter else None
        out.append(llamacpp.context(role.loaded.gguf, "guide", adapter, threads))
    return out[0], out[1]
