"""The decoding methods, each a generator with one signature.

A method yields requests (sample chunks, score streams, report progress) and receives the engine's
answers; it never touches a model. The same method code therefore runs on the plain reference
engine, the fast batched engine, or an API backend, and several methods can share one engine loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from .types import (
    ROOT,
    EftRequest,
    Progress,
    SampleRequest,
    SamplingParams,
    ScoreRequest,
    Stream,
    TraceStep,
)

Request = SampleRequest | ScoreRequest | EftRequest | Progress
MethodGen = Generator[Request, Any, "MethodOutput"]


@dataclass
class MethodOutput:
    """A method's answer before the engine adds counts and timing."""

    text: str
    score: float | None
    eos: bool
    trace: list[TraceStep]


def baseline(params: dict[str, Any], sp: SamplingParams) -> MethodGen:
    """One sample from the strong model (slot 0)."""
    (stream,) = yield SampleRequest((ROOT,), (0,), sp.max_new_tokens, sp.seed)
    return MethodOutput(stream.text, None, stream.eos, [])


def bon(params: dict[str, Any], sp: SamplingParams) -> MethodGen:
    """Best-of-N: N samples (slots 0..N-1); the highest guide score wins, ties to the lower index."""
    n = params["n"]
    streams = yield SampleRequest((ROOT,) * n, tuple(range(n)), sp.max_new_tokens, sp.seed)
    scores = yield ScoreRequest(tuple(streams))
    best = max(range(n), key=lambda i: (scores[i], -i))
    step = TraceStep(
        step=0,
        parents=[-1] * n,
        chunks=[s.text for s in streams],
        scores=list(scores),
        finished=[s.done for s in streams],
        kept=[best],
        carried=[False] * n,
    )
    return MethodOutput(streams[best].text, scores[best], streams[best].eos, [step])


def rank(scores: list[float], count: int) -> list[int]:
    """Indices of the `count` best scores, best first; ties go to the lower index."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order[:count]


def w2s(params: dict[str, Any], sp: SamplingParams) -> MethodGen:
    """Chunk-level beam search (Zhou et al. 2024) steered by the guide pair's log-likelihood ratio."""
    width, succ, chunk = params["w"], params["k"], params["l"]
    budget = sp.max_new_tokens
    trace: list[TraceStep] = []
    # Step 1: W*K chunks from the prompt.
    parents: list[Stream] = [ROOT] * (width * succ)
    parent_index = [-1] * (width * succ)
    kept: list[Stream] = []
    kept_scores: list[float] = []
    step = 0
    while True:
        # Candidates: finished beams carried over once, plus K fresh chunks per unfinished beam.
        carried = [(i, b) for i, b in enumerate(kept) if b.done]
        grow = [p for p in parents if not p.done]
        new: list[Stream] = []
        if grow:
            # Unfinished beams all hold step*L tokens, so one chunk length fits every stream.
            max_new = min(chunk, budget - grow[0].n_tokens)
            new = yield SampleRequest(tuple(grow), tuple(range(len(grow))), max_new, sp.seed)
        new_scores = (yield ScoreRequest(tuple(new))) if new else []
        candidates = [b for _, b in carried] + list(new)
        scores = [kept_scores[i] for i, _ in carried] + list(new_scores)
        cand_parent = [i for i, _ in carried] + [parent_index[j] for j in range(len(new))]
        best = rank(scores, width)
        trace.append(
            TraceStep(
                step=step,
                parents=cand_parent,
                chunks=[""] * len(carried) + [_added(p.text, c.text) for p, c in zip(grow, new)],
                scores=list(scores),
                finished=[c.done for c in candidates],
                kept=best,
                carried=[True] * len(carried) + [False] * len(new),
            )
        )
        kept = [candidates[i] for i in best]
        kept_scores = [scores[i] for i in best]
        settled = os.path.commonprefix([b.text for b in kept])  # noqa: RUF071 - text, not paths
        yield Progress(kept[0].text, min(1.0, max(b.n_tokens for b in kept) / budget), settled)
        if all(b.done for b in kept):
            break
        # Each kept, unfinished beam is the parent of K successors; finished beams are never copied.
        parents, parent_index = [], []
        for i, b in enumerate(kept):
            if not b.done:
                parents += [b] * succ
                parent_index += [i] * succ
        step += 1
    return MethodOutput(kept[0].text, kept_scores[0], kept[0].eos, trace)


def _added(before: str, after: str) -> str:
    """Text a chunk added to its parent."""
    return after[len(before) :] if after.startswith(before) else after


def eft(params: dict[str, Any], sp: SamplingParams) -> MethodGen:
    """Emulated fine-tuning: per token, sample from logits_S + beta * (logits_G+ - logits_G-)."""
    (stream,) = yield EftRequest(float(params["beta"]), 0, sp.seed)
    return MethodOutput(stream.text, None, stream.eos, [])


@dataclass(frozen=True)
class MethodInfo:
    """A method: its generator and the parameters it takes with their bounds."""

    run: Callable[[dict[str, Any], SamplingParams], MethodGen]
    params: dict[str, tuple[type, Any, Any, Any]]  # name -> (type, default, min, max)
    description: str


METHODS: dict[str, MethodInfo] = {
    "baseline": MethodInfo(baseline, {}, "plain sampling from the strong model"),
    "bon": MethodInfo(bon, {"n": (int, 4, 1, 64)}, "best of N samples by guide score"),
    "w2s": MethodInfo(
        w2s,
        {"w": (int, 2, 1, 16), "k": (int, 2, 1, 16), "l": (int, 30, 1, 4096)},
        "weak-to-strong chunk-level beam search",
    ),
    "eft": MethodInfo(eft, {"beta": (float, 1.0, 0.0, 10.0)}, "emulated fine-tuning (same vocabulary)"),
}


def method_params(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The parameters a method uses, from defaults and given values, checked against bounds."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    out: dict[str, Any] = {}
    for key, (typ, default, lo, hi) in METHODS[name].params.items():
        value = given.get(key)
        value = default if value is None else value
        try:
            value = typ(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{name}: {key} must be a number, got {value!r}") from exc
        if typ is int and isinstance(given.get(key), float) and given[key] != int(given[key]):
            raise ValueError(f"{name}: {key} must be a whole number, got {given[key]!r}")
        if not lo <= value <= hi:
            raise ValueError(f"{name}: {key} must be between {lo} and {hi}, got {value}")
        out[key] = value
    return out
