"""Per-stream states that live only while a stream can still become a parent, and the strong model's state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..contracts import Answer, Counts, ScoreRequest, Stream


@dataclass
class StrongState:
    """A stream's strong-model cache over prompt + response minus its last token, which is pending."""

    kv: Any  # the decoder's handle: packed torch tensors, or a llama.cpp sequence id
    pending: int  # next token to feed (the last one sampled, or the prompt's last token)
    length: int  # position of the pending token


@dataclass
class StateStore:
    """Caches keyed by stream id, registered in groups (the outputs of one request).

    A method's next request names its parents, which all come from one earlier group; at that point
    the rest of the group can never be a parent again and is dropped. So the store holds about one
    group per running method, however many chunks the search takes.
    """

    states: dict[int, Any] = field(default_factory=dict)
    group_of: dict[int, frozenset[int]] = field(default_factory=dict)
    on_drop: Any = None  # called with each dropped state (a sampler frees its KV sequence)
    prompt_of: dict[int, str] = field(default_factory=dict)  # the comparison's prompt, when given

    def get(self, sid: int) -> Any:
        """The state of a stream, or None."""
        return self.states.get(sid)

    def add_group(self, states: dict[int, Any], prompt: str | None = None) -> None:
        """Register the states produced by one request (of the comparison on `prompt`)."""
        group = frozenset(states)
        for sid, state in states.items():
            self.states[sid] = state
            self.group_of[sid] = group
            if prompt is not None:
                self.prompt_of[sid] = prompt

    def keep_prompts(self, prompts: set[str]) -> None:
        """Drop the states of comparisons no longer running (a search's last unkept beams)."""
        for sid in [s for s, p in self.prompt_of.items() if p not in prompts]:
            self.drop(sid)

    def release_groups(self, parents: set[int], keep: set[int]) -> None:
        """Drop every member of the groups holding `parents`, except those in `keep`."""
        for p in parents:
            for sid in self.group_of.get(p, ()):
                if sid not in keep:
                    self.drop(sid)

    def drop(self, sid: int) -> None:
        """Forget one stream."""
        state = self.states.pop(sid, None)
        self.group_of.pop(sid, None)
        self.prompt_of.pop(sid, None)
        if state is not None and self.on_drop is not None:
            self.on_drop(state)

    def settle(self, groups: Sequence[tuple[str, dict[int, Any]]], parents: Sequence[int]) -> None:
        """After one scoring batch: each request's new states form its group (a re-scored stream's old
        state goes first), and a parent none of whose children was kept is spent (every child of a
        parent is in the batch)."""
        kept = {sid for _, group in groups for sid in group}
        for parent in parents:
            if parent not in kept:
                self.drop(parent)
        for prompt, group in groups:
            for sid in group:
                self.drop(sid)
            self.add_group(group, prompt)

    def __len__(self) -> int:
        return len(self.states)


def pair_answers(
    items: Sequence[tuple[str, ScoreRequest]],
    jobs: Sequence[Sequence[Any]],
    keep: Callable[[Stream, Any, Any], Any],
) -> tuple[list[Answer], list[tuple[str, dict[int, Any]]]]:
    """Each request's scores, log G+ - log G- per stream, from the two guides' jobs in stream order (a job
    has `logps` and `targets`, the tokens it newly scored), and the states worth keeping per request:
    keep(stream, plus, minus) gives a stream's pair of states, or None."""
    out, groups, n = [], [], 0
    for prompt, req in items:
        counts, values, group = Counts(), [], {}
        for s in req.streams:
            plus, minus = jobs[0][n], jobs[1][n]
            values.append(sum(plus.logps) - sum(minus.logps))
            # Work done: only the tokens each guide newly scored, not the reused prefix.
            counts.guide_tokens += len(plus.targets) + len(minus.targets)
            pair = keep(s, plus, minus)
            if pair is not None:
                group[s.id] = pair
            n += 1
        out.append(Answer(values, counts=counts))
        groups.append((prompt, group))
    return out, groups
