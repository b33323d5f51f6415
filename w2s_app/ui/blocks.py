"""The page: assembled from one module per tab plus the named API; nothing else happens here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..arena.boards import BoardPayloads
from ..arena.caller import session_token
from ..wiring import Services
from . import rater
from .about import build_about
from .api import count_error, register_api
from .compare_tab import build_compare
from .history_tab import build_history
from .leaderboard_tab import build_leaderboard
from .page import Page
from .quiet_queue import quiet_queue

ASSETS = Path(__file__).resolve().parents[2] / "assets"
TITLE = "# w2s-arena\nDoes weak-to-strong search make a large model answer better? Compare blind and vote."


class ArenaBlocks(gr.Blocks):
    """gr.Blocks whose client-facing endpoints refuse a wrong number of values with one clear line."""

    def validate_inputs(self, block_fn: Any, inputs: list[Any]) -> None:
        """Gradio's check before preprocessing, made exact (and named) for the endpoints clients call."""
        error = count_error(block_fn, len(inputs))
        if error is not None:
            raise error
        super().validate_inputs(block_fn, inputs)


def build_app(services: Services, payloads: BoardPayloads | None = None) -> gr.Blocks:
    """The whole app: Compare, Leaderboard, History & export, About; plus named API endpoints.

    `payloads` serves pollers the cached leaderboard (shared with the JSON route when the caller
    registers one; a new one otherwise)."""
    # Gradio's copies of export files go after export_ttl_seconds too (checked every 5 minutes).
    ttl = int(max(services.settings.export_ttl_seconds, 60))
    with ArenaBlocks(title="w2s-arena", delete_cache=(300, ttl)) as demo:
        page = Page.start(services, payloads or BoardPayloads(services))
        gr.Markdown(TITLE)
        if services.oauth:  # votes then count per Hugging Face user, not per browser
            gr.LoginButton()
        build_compare(page)
        build_leaderboard(page)
        build_history(page)
        build_about(page)
        register_api(page)

        def ensure_voter(stored: str | None, profile: gr.OAuthProfile | None, request: gr.Request):
            token = session_token(services, stored, request, profile)
            return token, token

        demo.load(
            ensure_voter, inputs=page.voter, outputs=[page.voter, page.token_box], api_visibility="private"
        )
    # Beyond max_queue waiting comparisons, clients get "queue full, try again".
    demo.queue(max_size=services.settings.max_queue)
    quiet_queue(demo)
    return demo


def launch_kwargs() -> dict[str, Any]:
    """Theme, CSS and the vote keys' script go to launch() in Gradio 6."""
    css = (ASSETS / "style.css").read_text(encoding="utf-8") if (ASSETS / "style.css").is_file() else None
    return {"css": css, "theme": gr.themes.Soft(), "head": rater.KEYS_SCRIPT}
