"""The Gradio page, built by a factory that receives its services (no module-level state)."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from ..prompt_pool import examples_for, pick, pool_for
from ..runner import MAX_PROMPT_CHARS
from ..search import METHODS
from ..store.recent import wait_estimate
from . import handlers, rater
from .about import ABOUT, STEERING
from .handlers import UserError
from .render import LETTERS, column_label, leaderboard_svg, reveal_markdown, trace_svg, winrate_html
from .services import ASSETS, Services

MAX_COLUMNS = 4
VOTER_KEY = "w2s-arena-voter-id"


def _settings(w, k, l, n, max_new, temperature, top_p, seed) -> dict[str, Any]:  # noqa: E741
    return {"w": w, "k": k, "l": l, "n": n, "max_new_tokens": max_new, "temperature": temperature,
            "top_p": top_p, "seed": seed}  # fmt: skip


def _slider_values(defaults: dict[str, Any]) -> list[Any]:
    """W, K, L, N, max new tokens, temperature, top-p of a preset (the sliders' order)."""
    return [defaults.get("w", 2), defaults.get("k", 2), defaults.get("l", 30), defaults.get("n", 4),
            defaults.get("max_new_tokens", 128), defaults.get("temperature", 0.7), defaults.get("top_p", 1.0)]  # fmt: skip


def build_app(services: Services) -> gr.Blocks:
    """The whole app: Compare, Leaderboard, History & export, About; plus named API endpoints."""
    presets = services.settings.presets()
    default_preset = services.settings.default_preset
    if default_preset not in presets:
        default_preset = next(iter(presets))
    defaults = presets[default_preset].defaults
    w0, k0, l0, n0, max_new0, temperature0, top_p0 = _slider_values(defaults)

    def preset_line(name: str) -> str:
        return rater.preset_line(presets[name], wait_estimate(services.store, name))

    # Gradio's copies of export files go after export_ttl_seconds too (checked every 5 minutes).
    ttl = int(max(services.settings.export_ttl_seconds, 60))
    with gr.Blocks(title="w2s-arena", delete_cache=(300, ttl)) as demo:
        voter = gr.BrowserState(None, storage_key=VOTER_KEY)  # the voter token the server issued
        current = gr.State(None)  # {"id", "shown_at", "count"} of the comparison on screen
        gr.Markdown(
            "# w2s-arena\nDoes weak-to-strong search make a large model answer better? Compare blind and vote."
        )
        if services.oauth:  # votes then count per Hugging Face user, not per browser
            gr.LoginButton()

        with gr.Tab("Compare"):
            last_prompt = gr.State("")  # the prompt of the last run: Next replaces it, not a typed one
            preset = gr.Dropdown(
                rater.preset_choices(presets), value=default_preset, label="Preset", elem_id="w2s-preset"
            )
            preset_info = gr.Markdown(preset_line(default_preset), elem_classes="w2s-preset-info")
            prompt = gr.Textbox(
                label="Prompt",
                lines=3,
                max_length=MAX_PROMPT_CHARS,
                placeholder="Type a prompt, pick an example below, or press Next…",
            )
            examples = gr.Dataset(
                components=[prompt],
                samples=[[p] for p in examples_for(presets[default_preset])],
                label="Examples",
                samples_per_page=8,
            )
            with gr.Accordion("Settings", open=False):
                methods = gr.CheckboxGroup(list(METHODS), value=["baseline", "bon", "w2s"], label="Methods")
                with gr.Row():
                    w = gr.Slider(1, 8, value=w0, step=1, label="W (beams)")
                    k = gr.Slider(1, 8, value=k0, step=1, label="K (successors)")
                    l_ = gr.Slider(1, 256, value=l0, step=1, label="L (chunk tokens)")
                    n = gr.Slider(1, 16, value=n0, step=1, label="N (best-of-N)")
                with gr.Row():
                    max_new = gr.Slider(8, 1024, value=max_new0, step=8, label="Max new tokens")
                    temperature = gr.Slider(0, 2, value=temperature0, step=0.05, label="Temperature")
                    top_p = gr.Slider(0.05, 1, value=top_p0, step=0.05, label="Top-p")
                    seed = gr.Number(value=0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed")
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
                vote_letters = [
                    gr.Button(
                        f"{LETTERS[i]} is best",
                        interactive=False,
                        visible=i < 3,
                        elem_id=rater.VOTE_IDS[LETTERS[i]],
                    )
                    for i in range(MAX_COLUMNS)
                ]
                vote_tie = gr.Button("Tie", interactive=False, elem_id=rater.VOTE_IDS["tie"])
                vote_bad = gr.Button("All bad", interactive=False, elem_id=rater.VOTE_IDS["all_bad"])
            vote_buttons = [*vote_letters, vote_tie, vote_bad]
            gr.Markdown(rater.KEYS_HELP, elem_classes="w2s-keys")
            reveal = gr.Markdown()
            trace_plot = gr.HTML(elem_classes="w2s-trace-box")

        with gr.Tab("Leaderboard") as lb_tab:
            lb_preset = gr.Dropdown(["", *presets], value=default_preset, label="Preset (empty: all)")
            with gr.Row():
                lb_style = gr.Checkbox(False, label="Style control (net of answer length and markdown)")
                lb_fast = gr.Number(0, minimum=0, maximum=3600, label="Drop votes faster than (s)")
                lb_onepos = gr.Checkbox(False, label="Drop voters who always pick one position")
            lb_refresh = gr.Button("Refresh")
            lb_counts = gr.Markdown()
            lb_table = gr.Dataframe(  # hidden while empty: an empty table shows bare headers 1 2 3
                interactive=False,
                label="Bradley-Terry scores (Elo scale) with 95% bootstrap intervals",
                visible=False,
            )
            lb_chart = gr.HTML()
            lb_heat = gr.HTML()

        with gr.Tab("History & export") as hist_tab:
            with gr.Row():
                hist_preset = gr.Dropdown(["", *presets], value="", label="Preset (empty: all)")
                hist_page = gr.Number(value=1, precision=0, minimum=1, label="Page")
                hist_refresh = gr.Button("Show")
            admin_key = gr.Textbox(
                label="Admin key (optional: everyone's comparisons; without it, only yours)", type="password"
            )
            token_box = gr.Textbox(visible=False)  # the browser's token, as an input /export can take
            hist_status = gr.Markdown()
            hist_table = gr.Dataframe(interactive=False, wrap=True, visible=False)
            with gr.Row():
                exp_what = gr.Dropdown(
                    ["comparisons", "generations", "votes"], value="generations", label="Table"
                )
                exp_fmt = gr.Dropdown(["csv", "jsonl", "parquet"], value="csv", label="Format")
                exp_go = gr.Button("Export")
            exp_file = gr.File(label="Download", interactive=False)
            with gr.Accordion("Admin: per-voter table (needs the admin key above)", open=False):
                voters_go = gr.Button("Show voters")
                voters_table = gr.Dataframe(
                    interactive=False, label="Per voter: votes, agreement, position bias"
                )

        with gr.Tab("About"):
            gr.Markdown(ABOUT)
            gr.Markdown(STEERING)
            gr.Markdown(
                "## Presets\n"
                + "\n".join(
                    f"- **{p.name}**: {p.description} ({p.models_summary()})" for p in presets.values()
                )
            )

        # ---- handlers (one per action; every column shares them) ----------------------------------------

        def ensure_voter(vid: str | None, profile: gr.OAuthProfile | None, request: gr.Request):
            token = handlers.session_token(services, vid, request, profile)
            return token, token

        demo.load(ensure_voter, inputs=voter, outputs=[voter, token_box], api_visibility="private")

        def start_run(chosen: list[str], text: str) -> dict:
            shown = min(len(chosen), MAX_COLUMNS)
            out = {
                status: "starting…",
                reveal: "",
                trace_plot: "",
                current: None,
                last_prompt: text,
            }
            for i in range(MAX_COLUMNS):
                out[columns[i]] = gr.update(visible=i < max(shown, 1))
                out[boxes[i]] = gr.update(value="", label=f"Response {LETTERS[i]}")
                out[vote_letters[i]] = gr.update(interactive=False, visible=i < max(shown, 1))
            out[vote_tie] = out[vote_bad] = gr.update(interactive=False)
            return out

        # Gradio injects `profile` (Hugging Face login, None without it) and `progress` by their
        # types, and only for positional parameters: hence no *args here.
        def run_compare(
            text: str,
            preset_name: str,
            chosen: list[str],
            vid: str | None,
            w_: float,
            k_: float,
            l_value: float,
            n_: float,
            max_new_: float,
            temperature_: float,
            top_p_: float,
            seed_: float,
            profile: gr.OAuthProfile | None,
            request: gr.Request,
            progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects it
        ):
            if len(chosen) > MAX_COLUMNS:
                yield {status: f"choose at most {MAX_COLUMNS} methods"}
                return
            values = _settings(w_, k_, l_value, n_, max_new_, temperature_, top_p_, seed_)
            address = handlers.client_hash(services, request)
            try:
                voter_id = handlers.verified_voter(services, vid, profile).id
                stream = handlers.compare_stream(
                    services, text, preset_name, list(chosen), values, voter_id, address
                )
                for upd in stream:
                    out = {boxes[i]: t for i, t in enumerate(upd.texts)}
                    out[status] = upd.status
                    progress(sum(upd.fractions) / max(len(upd.fractions), 1), desc=upd.status)
                    if upd.done:
                        out[preset_info] = preset_line(preset_name or default_preset)
                        out[current] = {
                            "id": upd.comparison["public_id"],
                            "shown_at": time.time(),
                            "count": len(upd.texts),
                        }
                        for b in vote_buttons:
                            out[b] = gr.update(interactive=True)
                    yield out
            except UserError as exc:
                yield {status: f"**Error:** {exc}"}

        def cast_vote(
            choice: str,
            cur: dict | None,
            vid: str | None,
            profile: gr.OAuthProfile | None,
            request: gr.Request,
        ) -> dict:
            if not cur:
                return {status: "run a comparison first"}
            try:
                voter_ = handlers.verified_voter(services, vid, profile)
                address = handlers.client_hash(services, request)
                seconds = time.time() - cur["shown_at"]
                res = handlers.vote(services, cur["id"], choice, voter_, seconds, address)
            except UserError as exc:
                return {status: f"**Vote not recorded:** {exc}"}
            out = {b: gr.update(interactive=False) for b in vote_buttons}
            out[status] = "Thanks, your vote is in. Here is who wrote what:"
            twins = rater.reveal_twins(res["reveal"])
            out[reveal] = reveal_markdown(res["reveal"]) + (f"\n\n{twins}" if twins else "")
            out[trace_plot] = trace_svg(res["reveal"])
            for g in res["reveal"]:  # each column now names its method
                out[boxes[g["position"]]] = gr.update(label=column_label(g))
            out[current] = None
            return out

        inputs = [prompt, preset, methods, voter, w, k, l_, n, max_new, temperature, top_p, seed]
        answer_outputs = [status, reveal, trace_plot, current, last_prompt, preset_info, *columns, *boxes,
                          *vote_buttons]  # fmt: skip

        def next_prompt(text: str, last: str, preset_name: str) -> str:
            """A fresh prompt from the preset's pool, unless the rater typed one since the last run."""
            typed = (text or "").strip()
            if typed and typed != (last or "").strip():
                return text
            return pick(pool_for(presets.get(preset_name) or presets[default_preset]), typed)

        start = {"fn": start_run, "inputs": [methods, prompt], "outputs": answer_outputs, "queue": False,
                 "api_visibility": "private"}  # fmt: skip
        work = {"fn": run_compare, "inputs": inputs, "outputs": answer_outputs, "concurrency_limit": getattr(services.runner, "concurrency", 1),
                "concurrency_id": "model", "api_visibility": "private"}  # fmt: skip
        run.click(**start).then(**work)
        # Next fills the prompt box, then runs exactly like Run.
        next_btn.click(next_prompt, inputs=[prompt, last_prompt, preset], outputs=prompt, queue=False,
                       api_visibility="private").then(**start).then(**work)  # fmt: skip

        def choose_preset(name: str) -> list[Any]:
            """A new preset: its default settings, its own examples, its wait estimate."""
            chosen = presets.get(name) or presets[default_preset]
            samples = [[p] for p in examples_for(chosen)]
            return [*_slider_values(chosen.defaults), gr.Dataset(samples=samples), preset_line(chosen.name)]

        preset.change(choose_preset, inputs=preset,
                      outputs=[w, k, l_, n, max_new, temperature, top_p, examples, preset_info],
                      queue=False, api_visibility="private")  # fmt: skip
        examples.click(lambda sample: sample[0], inputs=examples, outputs=prompt, queue=False,
                       api_visibility="private")  # fmt: skip
        demo.load(preset_line, inputs=preset, outputs=preset_info, api_visibility="private")
        vote_outputs = [status, reveal, trace_plot, current, *boxes, *vote_buttons]
        choices = [*LETTERS[:MAX_COLUMNS], "tie", "all_bad"]
        for button, choice in zip(vote_buttons, choices, strict=True):
            button.click(_bind_choice(cast_vote, choice), inputs=[current, voter], outputs=vote_outputs,
                         concurrency_limit=None, api_visibility="private")  # fmt: skip

        def show_leaderboard(p: str, style: bool, fast: float, onepos: bool):
            try:
                board = handlers.leaderboard(services, p, bool(style), fast or 0, bool(onepos))
            except UserError as exc:
                raise gr.Error(str(exc), print_exception=False) from exc
            if board.table.empty:
                return rater.LEADERBOARD_EMPTY, gr.update(value=None, visible=False), "", ""
            c = board.counts
            counts = f"{c['votes']} blind votes on {c['comparisons']} comparisons ({c['ties']} ties, {c['all_bad']} all bad)"
            if board.style:
                counts += "; style coefficients: " + ", ".join(
                    f"{k} {v:+.2f}" for k, v in board.style.items()
                )
            cols = ["rank", "entity", "score", "lo", "hi", "votes", "wins", "ties"]
            return (
                counts,
                gr.update(value=board.table[cols], visible=True),
                leaderboard_svg(board.table),
                winrate_html(board.winrate),
            )

        lb_inputs = [lb_preset, lb_style, lb_fast, lb_onepos]
        for trigger in (lb_refresh.click, lb_preset.change, lb_style.change, lb_tab.select):
            trigger(show_leaderboard, inputs=lb_inputs, outputs=[lb_counts, lb_table, lb_chart, lb_heat],
                    concurrency_limit=4, api_visibility="private")  # fmt: skip

        def show_history(p: str, page: float, vid: str | None, key: str, profile: gr.OAuthProfile | None):
            try:
                owner = _owner(services, vid, key, profile)
                frame = handlers.history(services, page, p, owner)
            except UserError as exc:
                return f"**Error:** {exc}", gr.update(value=None, visible=False)
            if frame.empty:
                return rater.HISTORY_EMPTY, gr.update(value=None, visible=False)
            return "", gr.update(value=frame, visible=True)

        for trigger in (hist_refresh.click, hist_tab.select):
            trigger(show_history, inputs=[hist_preset, hist_page, voter, admin_key],
                    outputs=[hist_status, hist_table], concurrency_limit=4,
                    api_visibility="private")  # fmt: skip

        def do_export(what: str, fmt: str, token: str, key: str, profile: gr.OAuthProfile | None):
            try:
                return str(handlers.export(services, what, fmt, _owner(services, token, key, profile)))
            except UserError as exc:
                raise gr.Error(str(exc), print_exception=False) from exc

        # The page's Export button is also the /export endpoint: gradio_client downloads the file
        # (arguments: what, format, token, admin key).
        exp_go.click(do_export, inputs=[exp_what, exp_fmt, token_box, admin_key], outputs=exp_file,
                     concurrency_limit=2, api_name="export")  # fmt: skip

        def show_voters(key: str):
            if not services.identity.is_admin(key):
                raise gr.Error(
                    "the per-voter table needs the admin key (W2S_ADMIN_KEY)", print_exception=False
                )
            return handlers.voters(services)

        voters_go.click(show_voters, inputs=admin_key, outputs=voters_table, concurrency_limit=1,
                        api_visibility="private")  # fmt: skip

        _register_api(services)
    return demo


def _bind_choice(cast_vote: Any, choice: str) -> Any:
    """One click handler per vote button; a plain function (not a partial) so Gradio sees its type hints."""

    def on_click(
        cur: dict | None, vid: str | None, profile: gr.OAuthProfile | None, request: gr.Request
    ) -> dict:
        return cast_vote(choice, cur, vid, profile, request)

    return on_click


def _owner(services: Services, token: Any, admin_key: Any, profile: Any = None) -> str | None:
    """Whose rows a request may read: None (everyone's) with the admin key, else the verified voter's."""
    if services.identity.is_admin(admin_key):
        return None
    if admin_key:
        raise UserError("wrong admin key")
    return handlers.verified_voter(services, token, profile).id


def _register_api(services: Services) -> None:
    """Named JSON endpoints for gradio_client: /token, /compare, /vote, /leaderboard, /history, /voters.

    (/export is the page's button.) Each takes the voter token from /token, so a script has the
    same identity, limits and blindness as a browser.
    """

    def token(request: gr.Request) -> str:
        """A new voter token for this client; pass it to /compare, /vote, /history and /export."""
        try:
            return handlers.issue_token(services, request)
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    def compare(
        prompt: str,
        token: str,
        preset: str = "",
        methods: str = "baseline,bon,w2s",
        w: int | None = None,
        k: int | None = None,
        l: int | None = None,  # noqa: E741 - the paper's name
        n: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        request: gr.Request = None,
    ) -> dict:
        """Answer a prompt with several methods; answers come back anonymous (A, B, C) with the id to vote on."""
        settings = {"w": w, "k": k, "l": l, "n": n, "max_new_tokens": max_new_tokens, "temperature": temperature,
                    "top_p": top_p, "seed": seed}  # fmt: skip
        try:
            if not isinstance(methods, str):
                raise UserError("methods must be comma-separated text, e.g. 'baseline,bon,w2s'")
            names = [m.strip() for m in methods.split(",") if m.strip()]
            voter = handlers.verified_voter(services, token)
            address = handlers.client_hash(services, request)
            *_, last = handlers.compare_stream(
                services, prompt, preset or None, names, settings, voter.id, address
            )
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        return {
            "comparison_id": last.comparison["public_id"],
            "answers": handlers.public_answers(last.comparison),
            # e.g. [["B", "C"]]: the same text; a vote for one counts for both
            "twins": rater.twin_letters(last.comparison),
            "note": rater.twin_note(last.comparison),
        }

    def vote(comparison_id: str, choice: str, token: str, request: gr.Request = None) -> dict:
        """Vote on a comparison /compare showed this token: an answer letter, 'tie' or 'all_bad'; returns the reveal."""
        try:
            voter = handlers.verified_voter(services, token)
            return handlers.vote(
                services, comparison_id, choice, voter, None, handlers.client_hash(services, request)
            )
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    def leaderboard(
        preset: str = "",
        style_control: bool = False,
        min_vote_seconds: float = 0,
        drop_one_position: bool = False,
    ) -> dict:
        """Bradley-Terry table with 95% intervals, win-rate matrix and vote counts (blind votes only; cached)."""
        try:
            board = handlers.leaderboard(services, preset, style_control, min_vote_seconds, drop_one_position)
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        from .routes import board_payload

        return board_payload(board, services.board.fits)

    def history(page: int = 1, preset: str = "", token: str = "", admin_key: str = "") -> list[dict]:
        """Your past comparisons (everyone's with the admin key), newest first, 20 a page."""
        try:
            frame = handlers.history(services, page, preset, _owner(services, token, admin_key))
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        return frame.astype({"created_at": str}).to_dict(orient="records")

    def voters(admin_key: str = "") -> list[dict]:
        """Admin only: per voter (hashed) votes, agreement with the majority, position bias."""
        if not services.identity.is_admin(admin_key):
            raise gr.Error("the per-voter table needs the admin key (W2S_ADMIN_KEY)", print_exception=False)
        frame = handlers.voters(services)
        return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")

    gr.api(token, api_name="token", concurrency_limit=None)
    gr.api(
        compare,
        api_name="compare",
        concurrency_limit=getattr(services.runner, "concurrency", 1),
        concurrency_id="model",
    )
    gr.api(vote, api_name="vote", concurrency_limit=None)
    gr.api(leaderboard, api_name="leaderboard", concurrency_limit=8)
    gr.api(history, api_name="history", concurrency_limit=4)
    gr.api(voters, api_name="voters", concurrency_limit=1)


def launch_kwargs() -> dict[str, Any]:
    """Theme, CSS and the vote keys' script go to launch() in Gradio 6."""
    css = (ASSETS / "style.css").read_text(encoding="utf-8") if (ASSETS / "style.css").is_file() else None
    return {"css": css, "theme": gr.themes.Soft(), "head": rater.KEYS_SCRIPT}
