"""w2s: chunk-level beam search (Zhou et al. 2024) steered by the guide pair's log-likelihood ratio."""

from __future__ import annotations

import os
from typing import Any

from ...contracts import (
    ROOT,
    Progress,
    SampleRequest,
    SamplingParams,
    ScoreRequest,
    SearchError,
    Stream,
    TraceStep,
)
from .output import NO_ANSWER, MethodGen, MethodOutput


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
        new_parent: list[int] = []
        if grow:
            # Unfinished beams all hold step*L tokens, so one chunk length fits every stream.
            max_new = min(chunk, budget - grow[0].n_tokens)
            drawn = yield SampleRequest(tuple(grow), tuple(range(len(grow))), max_new, sp.seed)
            # A chunk a server left empty after every retry is no candidate (local chunks never are).
            keep = [j for j, c in enumerate(drawn) if not c.empty]
            grow, new, new_parent = (
                [grow[j] for j in keep],
                [drawn[j] for j in keep],
                [parent_index[j] for j in keep],
            )
        if not carried and not new:
            raise SearchError(NO_ANSWER)
        new_scores = (yield ScoreRequest(tuple(new))) if new else []
        candidates = [b for _, b in carried] + list(new)
        scores = [kept_scores[i] for i, _ in carried] + list(new_scores)
        cand_parent = [i for i, _ in carried] + new_parent
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
