"""Per-stream states that live only while a stream can still become a parent, and the strong model's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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

    def __len__(self) -> int:
        return len(self.states)
