"""The Leaderboard tab: Bradley-Terry scores with intervals, the win-rate heatmap and vote counts."""

from __future__ import annotations

import gradio as gr

from . import handlers, rater
from .caller import UserError
from .page import Page
from .render import leaderboard_svg, winrate_html

COLUMNS = ["rank", "entity", "score", "lo", "hi", "votes", "wins", "ties"]


def build_leaderboard(page: Page) -> None:
    """The tab's switches, table, chart and heatmap; refreshed on every switch and when the tab opens."""
    services = page.services
    with gr.Tab("Leaderboard") as tab:
        preset = gr.Dropdown(["", *page.presets], value=page.default_preset, label="Preset (empty: all)")
        with gr.Row():
            style = gr.Checkbox(False, label="Style control (net of answer length and markdown)")
            fast = gr.Number(0, minimum=0, maximum=3600, label="Drop votes faster than (s)")
            onepos = gr.Checkbox(False, label="Drop voters who always pick one position")
        refresh = gr.Button("Refresh")
        counts = gr.Markdown()
        table = gr.Dataframe(  # hidden while empty: an empty table shows bare headers 1 2 3
            interactive=False,
            label="Bradley-Terry scores (Elo scale) with 95% bootstrap intervals",
            visible=False,
        )
        chart = gr.HTML()
        heat = gr.HTML()

    def show_board(p: str, styled: bool, seconds: float, one_position: bool):
        try:
            board = handlers.leaderboard(services, p, bool(styled), seconds or 0, bool(one_position))
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        if board.table.empty:
            return rater.LEADERBOARD_EMPTY, gr.update(value=None, visible=False), "", ""
        c = board.counts
        said = f"{c['votes']} blind votes on {c['comparisons']} comparisons ({c['ties']} ties, {c['all_bad']} all bad)"
        if board.style:
            said += "; style coefficients: " + ", ".join(f"{k} {v:+.2f}" for k, v in board.style.items())
        return (
            said,
            gr.update(value=board.table[COLUMNS], visible=True),
            leaderboard_svg(board.table),
            winrate_html(board.winrate),
        )

    for trigger in (refresh.click, preset.change, style.change, tab.select):
        trigger(show_board, inputs=[preset, style, fast, onepos], outputs=[counts, table, chart, heat],
                concurrency_limit=4, api_visibility="private")  # fmt: skip
