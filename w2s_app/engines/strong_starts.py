"""Where the batched sampler's chunks start: the strong model's states, prefilled or kept."""

from __future__ import annotations

from ..backends.roles import Role
from ..contracts import ROOT, Stream
from .decoder import Decoder
from .states import StateStore, StrongState


class StrongStarts:
    """Where a strong-model chunk starts: the prompt prefilled once per running comparison, or the
    parent's kept state (rebuilt from the prompt when it was dropped: slower, same result)."""

    def __init__(self, role: Role, decoder: Decoder) -> None:
        self.role = role
        self.decoder = decoder
        self.kept = StateStore()  # the states of streams that may still become parents
        self.roots: dict[str, StrongState] = {}  # prompt -> prefilled prompt
        # Freed only after the rows starting from them copied them (release_unused).
        self._dropped: list[StrongState] = []  # dropped from `kept`
        self._rebuilt: list[StrongState] = []  # parents rebuilt from the prompt for one chunk
        self.kept.on_drop = self._dropped.append

    def of(self, prompt: str, parent: Stream) -> StrongState:
        """The state a chunk after `parent` starts from."""
        if parent.id == ROOT.id or not parent.token_ids:
            if prompt not in self.roots:
                self.roots[prompt] = self.decoder.prefill(self.role.prompt_ids(prompt))
            return self.roots[prompt]
        state = self.kept.get(parent.id)
        if state is None:
            state = self.decoder.prefill(self.role.prompt_ids(prompt) + list(parent.token_ids))
            self._rebuilt.append(state)
        return state

    def keep_prompts(self, prompts: set[str]) -> None:
        """Forget the states of comparisons no longer running (their prompt, a search's last unkept beams)."""
        for prompt in [p for p in self.roots if p not in prompts]:
            self.decoder.release(self.roots.pop(prompt))
        self.kept.keep_prompts(prompts)

    def release_unused(self) -> None:
        """Free the dropped and rebuilt states (the rows that start from them have copied them)."""
        for state in self._dropped + self._rebuilt:
            self.decoder.release(state)
        self._dropped.clear()
        self._rebuilt.clear()
