"""The History & export tab: your past comparisons, downloads, and (with the admin key) the voter table."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..arena import ArenaError, admin, records
from ..arena.caller import owner
from ..arena.records import EXPORT_TABLES
from . import rater
from .page import Page


def build_history(page: Page) -> None:
    """The history table, the export button (also the /export endpoint) and the admin's voter table."""
    services = page.services
    with gr.Tab("History & export") as tab:
        with gr.Row():
            preset = gr.Dropdown(["", *page.presets], value="", label="Preset (empty: all)")
            number = gr.Number(value=1, precision=0, minimum=1, label="Page")
            refresh = gr.Button("Show")
        admin_key = gr.Textbox(
            label="Admin key (optional: everyone's comparisons; without it, only yours)", type="password"
        )
        status = gr.Markdown()
        table = gr.Dataframe(interactive=False, wrap=True, visible=False)
        with gr.Row():
            what = gr.Dropdown(
                list(EXPORT_TABLES), value="generations",
                label="Table (judgements: admin only)", allow_custom_value=True,
            )  # fmt: skip
            # Custom values reach the handler, which refuses them in one line (Gradio's own check
            # would log a traceback for every refused value a script sends to /export).
            fmt = gr.Dropdown(
                ["csv", "jsonl", "parquet"], value="csv", label="Format", allow_custom_value=True
            )
            go = gr.Button("Export")
        file = gr.File(label="Download", interactive=False)
        with gr.Accordion("Admin: per-voter table (needs the admin key above)", open=False):
            voters_go = gr.Button("Show voters")
            voters_table = gr.Dataframe(interactive=False, label="Per voter: votes, agreement, position bias")
        with gr.Accordion(
            "Admin: judge new comparisons automatically (needs the admin key above)", open=False
        ):
            with gr.Row():
                judge_base = gr.Textbox(label="Judge's server (OpenAI-compatible, .../v1)")
                judge_model = gr.Textbox(label="Judge model")
                judge_limit = gr.Number(value=20, precision=0, minimum=1, maximum=10_000, label="At most")
            judge_go = gr.Button("Judge the preset's new comparisons")
            judge_out = gr.Markdown()

    def show_history(p: str, page_number: float, vid: str | None, key: str, profile: gr.OAuthProfile | None):
        try:
            frame = records.history(services, page_number, p, owner(services, vid, key, profile))
        except ArenaError as exc:
            return f"**Error:** {exc}", gr.update(value=None, visible=False)
        if frame.empty:
            return rater.HISTORY_EMPTY, gr.update(value=None, visible=False)
        return "", gr.update(value=frame, visible=True)

    for trigger in (refresh.click, tab.select):
        trigger(show_history, inputs=[preset, number, page.voter, admin_key], outputs=[status, table],
                concurrency_limit=4, api_visibility="private")  # fmt: skip

    def export(
        table_name: str, file_format: str, token: str, key: str, profile: gr.OAuthProfile | None
    ) -> Any:
        """Your part of a table as a file (everything with the admin key): what, format, token, admin key."""
        try:
            return str(
                records.export(services, table_name, file_format, owner(services, token, key, profile))
            )
        except ArenaError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    # The page's Export button is also the /export endpoint: gradio_client downloads the file.
    go.click(export, inputs=[what, fmt, page.token_box, admin_key], outputs=file, concurrency_limit=2,
             api_name="export")  # fmt: skip

    def show_voters(key: str):
        try:
            return admin.voters(services, key)
        except ArenaError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    def judge(
        p: str,
        base: str,
        model: str,
        limit: float,
        key: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects it
    ) -> str:
        if not services.identity.is_admin(key):
            return "**Error:** judging needs the admin key (W2S_ADMIN_KEY)"
        if not p:
            return "**Error:** choose a preset above"
        said = admin.judge(
            services, p, base, model, limit, lambda done, total: progress(done / max(total, 1))
        )
        return f"```\n{said}\n```"

    judge_go.click(judge, inputs=[preset, judge_base, judge_model, judge_limit, admin_key], outputs=judge_out,
                   concurrency_limit=1, api_visibility="private")  # fmt: skip

    voters_go.click(
        show_voters, inputs=admin_key, outputs=voters_table, concurrency_limit=1, api_visibility="private"
    )
