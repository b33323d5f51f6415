"""Turn results into what the page shows: reveal tables, trace plots, leaderboard charts."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from ..arena.letters import LETTERS


def letter(position: int) -> str:
    """Column name of a display position."""
    return LETTERS[position]


def reveal_markdown(generations: list[dict[str, Any]]) -> str:
    """After the vote: each column's method, parameters, score, tokens and seconds."""
    rows = [
        "| answer | method | score | strong tokens | guide tokens | seconds | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in sorted(generations, key=lambda g: g["position"]):
        score = "" if g.get("score") is None else f"{g['score']:.2f}"
        status = "ok" if g.get("status") == "done" else f"failed: {html.escape(str(g.get('error')))}"
        rows.append(
            f"| {letter(g['position'])} | {html.escape(g['label'])} | {score} | {g['strong_tokens']} | "
            f"{g['guide_tokens']} | {g['seconds']:.1f} | {status} |"
        )
    return "\n".join(rows)


def column_label(g: dict[str, Any]) -> str:
    """A column's title after the vote: its letter, method and parameters, score, tokens, seconds."""
    parts = [f"Response {letter(g['position'])}: {g['label']}"]
    if g.get("status") != "done":
        return parts[0] + " (failed)"
    if g.get("score") is not None:
        parts.append(f"score {g['score']:.2f}")
    parts.append(f"{g['strong_tokens']} tokens")
    parts.append(f"{g['seconds']:.1f} s")
    return " · ".join(parts)


def trace_svg(generations: list[dict[str, Any]], width: int = 720, height: int = 300) -> str:
    """Weak-to-strong search trace as inline SVG: candidates as points, kept beams joined to their parents.

    Each step's candidates are grey points; kept ones are orange and a line joins each kept beam to
    the kept beam it grew from, so the lines follow the beams' scores step by step.
    """
    traces = [(g, g.get("trace") or []) for g in generations if g.get("method") == "w2s" and g.get("trace")]
    if not traces:
        return ""
    g, steps = traces[0]  # one w2s answer per comparison
    scores = [float(s) for st in steps for s in st["scores"]]
    lo, hi = min(scores), max(scores)
    pad = max((hi - lo) * 0.08, 1.0)
    lo, hi = lo - pad, hi + pad
    left, right, top, bottom = 56, 20, 28, 36
    n = len(steps)

    def x(step: int) -> float:
        return left + (width - left - right) * (step + 0.5) / n

    def y(score: float) -> float:
        return top + (height - top - bottom) * (hi - score) / (hi - lo)

    title = f"Weak-to-strong search trace (answer {letter(g['position'])})"
    out = [
        f'<svg class="w2s-trace" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="search trace">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{width / 2}" y="{height - 4}" text-anchor="middle" font-size="12">step</text>',
        f'<text x="14" y="{height / 2}" font-size="12" transform="rotate(-90 14 {height / 2})" '
        f'text-anchor="middle">guide score</text>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.0f}</text>')
    prev_kept: list[float] = []  # y of each kept beam of the previous step, best first
    lines, points = [], []
    for i, st in enumerate(steps):
        out.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 14}" text-anchor="middle" font-size="11">{i + 1}</text>'
        )
        kept = st["kept"]
        for c, score in enumerate(st["scores"]):
            parent = st["parents"][c] if c < len(st["parents"]) else -1
            if c in kept and 0 <= parent < len(prev_kept):
                lines.append(
                    f'<line x1="{x(i - 1):.1f}" y1="{prev_kept[parent]:.1f}" x2="{x(i):.1f}" '
                    f'y2="{y(float(score)):.1f}" stroke="#e07a1f" stroke-width="2"/>'
                )
            fill, r = ("#e07a1f", 6) if c in kept else ("#8a94a6", 4)
            points.append(
                f'<circle class="{"kept" if c in kept else "candidate"}" cx="{x(i):.1f}" '
                f'cy="{y(float(score)):.1f}" r="{r}" fill="{fill}" fill-opacity="0.85">'
                f"<title>step {i + 1}, candidate {c}: {float(score):.2f}</title></circle>"
            )
        prev_kept = [y(float(st["scores"][c])) for c in kept]
    legend_y = 12  # beside the title, above the plot area
    out += [
        *lines,
        *points,
        f'<circle cx="{width - 170}" cy="{legend_y}" r="6" fill="#e07a1f"/>',
        f'<text x="{width - 160}" y="{legend_y + 4}" font-size="11">kept beam</text>',
        f'<circle cx="{width - 80}" cy="{legend_y}" r="4" fill="#8a94a6"/>',
        f'<text x="{width - 70}" y="{legend_y + 4}" font-size="11">candidate</text>',
        "</svg>",
    ]
    return "".join(out)


def leaderboard_svg(table: pd.DataFrame, width: int = 640) -> str:
    """Horizontal chart of scores with their 95% intervals, as inline SVG."""
    if table.empty:
        return "<p>No blind votes yet.</p>"
    lo, hi = float(table["lo"].min()), float(table["hi"].max())
    # Pad both sides so equal scores (ties only) sit mid-chart and interval ends stay visible.
    pad = max((hi - lo) * 0.1, 25.0)
    lo, hi = lo - pad, hi + pad
    span = hi - lo
    left, right, row_h = 180, 30, 28
    scale = (width - left - right) / span
    h = row_h * len(table) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" role="img" aria-label="scores">'
    ]
    for i, r in enumerate(table.itertuples()):
        y = 20 + i * row_h
        x0, x1, xs = (left + (v - lo) * scale for v in (r.lo, r.hi, r.score))
        name = html.escape(str(r.entity))
        parts += [
            f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" font-size="13">{name}</text>',
            f'<line x1="{x0:.1f}" y1="{y}" x2="{x1:.1f}" y2="{y}" stroke="#888" stroke-width="3"/>',
            f'<circle cx="{xs:.1f}" cy="{y}" r="6" fill="#e07a1f"/>',
            f'<text x="{xs:.1f}" y="{y - 9}" text-anchor="middle" font-size="11">{r.score:.0f}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks between low and high, for a log-scale cost axis."""
    ticks = []
    for exp in range(math.floor(math.log10(max(low, 1e-9))), math.ceil(math.log10(max(high, 1e-9))) + 1):
        ticks += [m * 10**exp for m in (1, 2, 5) if low <= m * 10**exp <= high]
    return ticks


def cost_svg(table: pd.DataFrame, costs: pd.DataFrame, width: int = 640, height: int = 320) -> str:
    """Score against median strong-model tokens per answer (log scale), with 95% intervals, as inline SVG."""
    if table.empty or costs.empty:
        return ""
    rows = table.merge(costs, on="entity")
    rows = rows[rows["strong_tokens"] > 0]
    if rows.empty:
        return ""
    x_lo, x_hi = float(rows["strong_tokens"].min()) / 1.5, float(rows["strong_tokens"].max()) * 1.5
    y_lo, y_hi = float(rows["lo"].min()) - 10, float(rows["hi"].max()) + 10
    left, right, top, bottom = 60, 150, 20, 45  # room on the right for the last arm's name

    def x(v: float) -> float:
        return left + (math.log(v) - math.log(x_lo)) / (math.log(x_hi) - math.log(x_lo)) * (
            width - left - right
        )

    def y(v: float) -> float:
        return top + (y_hi - v) / (y_hi - y_lo) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="score against cost">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#444"/>',
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle" font-size="12">'
        "median strong-model tokens per answer (log scale)</text>",
        f'<text x="14" y="{(top + height - bottom) / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2})">score (Elo)</text>',
    ]
    for tick in log_ticks(x_lo, x_hi):
        parts.append(f'<text x="{x(tick):.1f}" y="{height - bottom + 15}" text-anchor="middle" '
                     f'font-size="11">{tick:g}</text>')  # fmt: skip
    step = next(s for s in (5, 10, 25, 50, 100, 250, 500) if (y_hi - y_lo) / s <= 8)
    for tick in range(math.ceil(y_lo / step) * step, math.floor(y_hi) + 1, step):
        parts.append(
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">{tick}</text>'
        )
    for r in rows.itertuples():
        cx = x(float(r.strong_tokens))
        parts += [
            f'<line x1="{cx:.1f}" y1="{y(r.lo):.1f}" x2="{cx:.1f}" y2="{y(r.hi):.1f}" stroke="#888" stroke-width="3"/>',
            f'<circle cx="{cx:.1f}" cy="{y(r.score):.1f}" r="6" fill="#e07a1f"/>',
            f'<text x="{cx + 9:.1f}" y="{y(r.score) + 4:.1f}" font-size="12">{html.escape(str(r.entity))}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def winrate_html(matrix: pd.DataFrame) -> str:
    """Pairwise win-rate heatmap as an HTML table (row beats column)."""
    if matrix.empty:
        return ""
    cols = list(matrix.columns)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for name, row in matrix.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if pd.isna(v):
                cells.append("<td>–</td>")
            else:
                # Orange for wins, blue for losses, white at 50%.
                r, g, b = (
                    (255, int(255 - 140 * (v - 0.5) * 2), int(255 - 200 * (v - 0.5) * 2))
                    if v >= 0.5
                    else (int(255 - 200 * (0.5 - v) * 2), int(255 - 120 * (0.5 - v) * 2), 255)
                )
                cells.append(f'<td style="background: rgb({r},{g},{b})">{v:.0%}</td>')
        body.append(f"<tr><th>{html.escape(str(name))}</th>{''.join(cells)}</tr>")
    return f'<div class="w2s-heatmap"><table><tr><th>row beats column</th>{head}</tr>{"".join(body)}</table></div>'
