"""What the tabs of one page share: the services, the presets, and the browser's voter token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..config import Preset
from ..wiring import Services

VOTER_KEY = "w2s-arena-voter-id"


@dataclass
class Page:
    """The page being built: services, presets, the default preset, and the voter token's components."""

    services: Services
    presets: dict[str, Preset]
    default_preset: str
    voter: Any  # gr.BrowserState: the voter token the server issued, kept in the browser
    token_box: Any  # a hidden textbox holding the same token, as an input /export can take
    payloads: Any  # routes.BoardPayloads: the cached leaderboard as pollers get it

    @classmethod
    def start(cls, services: Services, payloads: Any) -> Page:
        """Read the presets and make the shared components (inside a gr.Blocks)."""
        presets = services.settings.presets()
        default = services.settings.default_preset
        if default not in presets:
            default = next(iter(presets))
        voter = gr.BrowserState(None, storage_key=VOTER_KEY)
        return cls(services, presets, default, voter, gr.Textbox(visible=False), payloads)

    def preset(self, name: str | None) -> Preset:
        """A preset by name, or the default one."""
        return self.presets.get(name or "") or self.presets[self.default_preset]
