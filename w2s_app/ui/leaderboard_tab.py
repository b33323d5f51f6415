"""The Leaderboard tab: Bradley-Terry scores with intervals, head-to-head records, how many votes the top
pair still needs, the win-rate heatmap, and (for an automatic judge) its agreement with people."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..arena import ArenaError, boards
from ..leaderboard import separation_text, source_options
from . import rater
from .page import Page
from .render import cost_svg, leaderboard_svg, winrate_html

COLUMNS = ["rank", "entity", "score", "lo", "hi", "votes", "wins", "ties"]
PAIR_COLUMNS = ["a", "b", "wins", "losses", "ties", "share", "share_lo", "share_hi"]
SOURCE_INFO = "people (the default), an automatic judge, or both; judges never enter the people's board"


def build_leaderboard(page: Page) -> None:
    """The tab's switches, tables, chart and heatmap; refreshed on every switch and when the tab opens."""
    services = page.services
    with gr.Tab("Leaderboard") as tab:
        with gr.Row():
            preset = gr.Dropdown(["", *page.presets], value=page.default_preset, label="Preset (empty: all)")
            vote_source = gr.Dropdown(["humans"], value="humans", label="Whose votes", info=SOURCE_INFO)
        with gr.Row():
            style = gr.Checkbox(False, label="Style control (net of answer length and markdown)")
            fast = gr.Number(0, minimum=0, maximum=3600, label="Drop votes faster than (s)")
            onepos = gr.Checkbox(False, label="Drop voters who always pick one position")
            followers = gr.Checkbox(False, label="Drop voters who follow one method (fast, far above chance)")
        refresh = gr.Button("Refresh")
        counts = gr.Markdown()
        table = gr.Dataframe(  # hidden while empty: an empty table shows bare headers 1 2 3
            interactive=False, label="Bradley-Terry scores (Elo scale) with 95% intervals", visible=False
        )
        chart = gr.HTML()
        pairs = gr.Dataframe(
            interactive=False, visible=False,
            label="Head to head: a's wins, losses and ties against b; a's share of decided votes, 95% Wilson interval",
        )  # fmt: skip
        neighbour_rows = gr.Dataframe(
            interactive=False, visible=False,
            label="Neighbours: gap in Elo (95% interval); more_votes: roughly how many more would separate them "
            "at the current rate; fragility: the fewest votes found whose removal swaps them",
        )  # fmt: skip
        cost_chart = gr.HTML()
        matched = gr.Dataframe(
            interactive=False, visible=False,
            label="Compute-matched: each w2s arm against the best-of-N arm of the nearest strong-token cost "
            "(difference in Elo, search minus bon, 95% interval)",
        )  # fmt: skip
        agreement = gr.Markdown()
        heat = gr.HTML()

    def show_board(
        p: str, whose: str, styled: bool, seconds: float, one_position: bool, follow: bool
    ) -> list[Any]:
        try:
            board = boards.leaderboard(
                services, p, bool(styled), seconds or 0, bool(one_position), whose, bool(follow)
            )
        except ArenaError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        choices = gr.update(choices=source_options(board.judges), value=whose or "humans")
        if board.table.empty:
            hidden = gr.update(value=None, visible=False)
            return [rater.LEADERBOARD_EMPTY, choices, hidden, "", hidden, hidden, "", hidden, "", ""]
        c = board.counts
        said = (
            f"{c['votes']} votes on {c['comparisons']} comparisons ({c['ties']} ties, {c['all_bad']} all bad)"
        )
        said += f"; scores start level and spread with the votes (prior: {board.prior_elo:g} Elo)"
        if services.settings.voter_cap:
            said += f"; at most {services.settings.voter_cap} votes per voter and preset count"
        if board.style:
            said += "; style coefficients: " + ", ".join(f"{k} {v:+.2f}" for k, v in board.style.items())
        if board.separation:
            said += "  \n" + separation_text(board.separation)
        pair_table = board.pairs[[c for c in PAIR_COLUMNS if c in board.pairs]] if len(board.pairs) else None
        agree = board.agreement.summary() if board.agreement is not None else ""
        for view in board.gold:  # the gold reward beside people (and the judge): never in the scores
            agree += f"\n\n**Gold reward `{view.reward}`** (mean per answer, best first): " + ", ".join(
                f"{r.entity} {r.reward:+.3f}" for r in view.table.itertuples()
            )
            agree += "\n\nPeople vs reward: " + view.with_people.summary()
            if view.with_judge is not None:
                agree += "\n\nJudge vs reward: " + view.with_judge.summary()
        return [
            said,
            choices,
            gr.update(
                value=board.table[[*COLUMNS, *(["arm"] if "arm" in board.table else [])]], visible=True
            ),
            leaderboard_svg(board.table),
            gr.update(value=pair_table, visible=pair_table is not None),
            gr.update(value=board.neighbours, visible=len(board.neighbours) > 0),
            cost_svg(board.table, board.costs),
            gr.update(value=board.matched, visible=len(board.matched) > 0),
            agree,
            winrate_html(board.winrate),
        ]

    inputs = [preset, vote_source, style, fast, onepos, followers]
    outputs = [counts, vote_source, table, chart, pairs, neighbour_rows, cost_chart, matched, agreement, heat]
    for trigger in (
        refresh.click,
        preset.change,
        vote_source.input,
        style.change,
        followers.change,
        tab.select,
    ):
        trigger(show_board, inputs=inputs, outputs=outputs, concurrency_limit=4, api_visibility="private")
