"""The Compare tab: a prompt, the settings, anonymous answers side by side, the vote and the reveal."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from ..arena import ArenaError, compare, votes
from ..arena.caller import caller
from ..prompt_pool import examples_for, pick, pool_for
from ..runner import MAX_PROMPT_CHARS
from ..search import METHODS
from . import rater
from .controls import build_controls, preset_values, values_of
from .page import Page
from .render import LETTERS, column_label, reveal_markdown, trace_svg
from .signature import param, with_signature

MAX_COLUMNS = 4


def build_compare(page: Page) -> None:
    """The tab's components and its handlers (Run, Next, the vote buttons, the preset menu)."""
    services = page.services

    def preset_line(name: str) -> str:
        return rater.preset_line(page.preset(name), compare.preset_wait(services, page.preset(name).name))

    with gr.Tab("Compare"):
        current = gr.State(None)  # {"id", "shown_at", "count"} of the comparison on screen
        last_prompt = gr.State("")  # the prompt of the last run: Next replaces it, not a typed one
        preset = gr.Dropdown(
            rater.preset_choices(page.presets),
            value=page.default_preset,
            label="Preset",
            elem_id="w2s-preset",
        )
        preset_info = gr.Markdown(preset_line(page.default_preset), elem_classes="w2s-preset-info")
        prompt = gr.Textbox(label="Prompt", lines=3, max_length=MAX_PROMPT_CHARS,
                            placeholder="Type a prompt, pick an example below, or press Next…")  # fmt: skip
        examples = gr.Dataset(components=[prompt], samples=[[p] for p in examples_for(page.preset(None))],
                              label="Examples", samples_per_page=8)  # fmt: skip
        with gr.Accordion("Settings", open=False):
            methods = gr.CheckboxGroup(list(METHODS), value=["baseline", "bon", "w2s"], label="Methods")
            controls = build_controls(page.preset(None).defaults)
        with gr.Row():
            run = gr.Button("Run", variant="primary")
            next_btn = gr.Button("Next", elem_id="w2s-next")
        status = gr.Markdown(elem_classes="w2s-status")
        columns, boxes = [], []
        with gr.Row():
            for i in range(MAX_COLUMNS):
                with gr.Column(visible=i < 3, min_width=220) as col:
                    boxes.append(gr.Textbox(label=f"Response {LETTERS[i]}", lines=12, interactive=False,
                                            elem_classes="w2s-answer", buttons=["copy"]))  # fmt: skip
                columns.append(col)
        with gr.Row():
            letters = [gr.Button(f"{LETTERS[i]} is best", interactive=False, visible=i < 3,
                                 elem_id=rater.VOTE_IDS[LETTERS[i]]) for i in range(MAX_COLUMNS)]  # fmt: skip
            tie = gr.Button("Tie", interactive=False, elem_id=rater.VOTE_IDS["tie"])
            bad = gr.Button("All bad", interactive=False, elem_id=rater.VOTE_IDS["all_bad"])
        buttons = [*letters, tie, bad]
        gr.Markdown(rater.KEYS_HELP, elem_classes="w2s-keys")
        reveal = gr.Markdown()
        trace_plot = gr.HTML(elem_classes="w2s-trace-box")

    def start_run(chosen: list[str], text: str) -> dict:
        shown = max(min(len(chosen), MAX_COLUMNS), 1)
        out: dict[Any, Any] = {
            status: "starting…",
            reveal: "",
            trace_plot: "",
            current: None,
            last_prompt: text,
        }
        for i in range(MAX_COLUMNS):
            out[columns[i]] = gr.update(visible=i < shown)
            out[boxes[i]] = gr.update(value="", label=f"Response {LETTERS[i]}")
            out[letters[i]] = gr.update(interactive=False, visible=i < shown)
        out[tie] = out[bad] = gr.update(interactive=False)
        return out

    # Gradio injects `profile` and `request` by their types, and only for positional parameters.
    def run_compare(text: str, preset_name: str, chosen: list[str], vid: str | None, *rest: Any):
        *values, profile, request = rest
        if len(chosen) > MAX_COLUMNS:
            yield {status: f"choose at most {MAX_COLUMNS} methods"}
            return
        try:
            who = caller(services, vid, request, profile)
            stream = compare.compare_stream(services, who, text, preset_name, list(chosen), values_of(values))
            for upd in stream:
                out: dict[Any, Any] = {boxes[i]: t for i, t in enumerate(upd.texts)}
                out[status] = upd.status
                if upd.done:
                    out[preset_info] = preset_line(preset_name)
                    out[current] = {"id": upd.comparison["public_id"], "shown_at": time.time(),
                                    "count": len(upd.texts)}  # fmt: skip
                    for b in buttons:
                        out[b] = gr.update(interactive=True)
                yield out
        except ArenaError as exc:
            yield {status: f"**Error:** {exc}"}

    def cast_vote(choice: str, cur: dict | None, vid: str | None, profile: Any, request: Any) -> dict:
        if not cur:
            return {status: "run a comparison first"}
        try:
            res = votes.vote(services, caller(services, vid, request, profile), cur["id"], choice,
                                time.time() - cur["shown_at"])  # fmt: skip
        except ArenaError as exc:
            return {status: f"**Vote not recorded:** {exc}"}
        out: dict[Any, Any] = {b: gr.update(interactive=False) for b in buttons}
        out[status] = ("Thanks, your vote is in. Here is who wrote what:" if res["counted"] else
                       "Thanks, your vote is kept, but not on the board: you chose the seed, and a known "
                       "seed lets a script name the columns. Here is who wrote what:")  # fmt: skip
        twins = rater.reveal_twins(res["reveal"])
        out[reveal] = reveal_markdown(res["reveal"]) + (f"\n\n{twins}" if twins else "")
        out[trace_plot] = trace_svg(res["reveal"])
        for g in res["reveal"]:  # each column now names its method
            out[boxes[g["position"]]] = gr.update(label=column_label(g))
        out[current] = None
        return out

    def next_prompt(text: str, last: str, preset_name: str) -> str:
        """A fresh prompt from the preset's pool, unless the rater typed one since the last run."""
        typed = (text or "").strip()
        if typed and typed != (last or "").strip():
            return text
        return pick(pool_for(page.preset(preset_name)), typed)

    def choose_preset(name: str) -> list[Any]:
        """A new preset: its default settings, its own examples, its wait estimate."""
        chosen = page.preset(name)
        samples = [[p] for p in examples_for(chosen)]
        return [*preset_values(chosen.defaults), gr.Dataset(samples=samples), preset_line(chosen.name)]

    outputs = [status, reveal, trace_plot, current, last_prompt, preset_info, *columns, *boxes, *buttons]
    start = {"fn": start_run, "inputs": [methods, prompt], "outputs": outputs, "queue": False,
             "api_visibility": "private"}  # fmt: skip
    # The model queue (services.queue) bounds the work; Gradio only needs a thread per waiting rater.
    work = {"fn": _with_injected(run_compare, len(controls)), "outputs": outputs, "api_visibility": "private",
            "inputs": [prompt, preset, methods, page.voter, *controls],
            "concurrency_limit": services.queue.max_running + services.queue.max_waiting}  # fmt: skip
    run.click(**start).then(**work)
    next_btn.click(next_prompt, inputs=[prompt, last_prompt, preset], outputs=prompt, queue=False,
                   api_visibility="private").then(**start).then(**work)  # fmt: skip
    preset.change(choose_preset, inputs=preset, outputs=[*controls, examples, preset_info], queue=False,
                  api_visibility="private")  # fmt: skip
    examples.click(lambda sample: sample[0], inputs=examples, outputs=prompt, queue=False,
                   api_visibility="private")  # fmt: skip
    vote_outputs = [status, reveal, trace_plot, current, *boxes, *buttons]
    for button, choice in zip(buttons, [*LETTERS[:MAX_COLUMNS], "tie", "all_bad"], strict=True):
        button.click(_bind_choice(cast_vote, choice), inputs=[current, page.voter], outputs=vote_outputs,
                     concurrency_limit=None, api_visibility="private")  # fmt: skip


def _with_injected(fn: Any, n_controls: int) -> Any:
    """`fn(text, preset, methods, voter, *controls, profile, request)` with named parameters Gradio can read.

    Gradio injects the Hugging Face profile and the request by type hint, and only into named
    positional parameters, so the generated controls get named parameters too.
    """
    params = [param(n, Any) for n in ("text", "preset_name", "chosen", "vid")]
    params += [param(f"setting_{i}", Any) for i in range(n_controls)]
    params += [param("profile", gr.OAuthProfile | None), param("request", gr.Request)]
    return with_signature(fn, params)


def _bind_choice(cast_vote: Any, choice: str) -> Any:
    """One click handler per vote button; a plain function (not a partial) so Gradio sees its type hints."""

    def on_click(
        cur: dict | None, vid: str | None, profile: gr.OAuthProfile | None, request: gr.Request
    ) -> dict:
        return cast_vote(choice, cur, vid, profile, request)

    return on_click
