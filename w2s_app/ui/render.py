"""Turn results into what the page shows: reveal tables, trace plots, leaderboard charts."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

LETTERS = "ABCDEFGH"


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


def trace_frame(generations: list[dict[str, Any]]) -> pd.DataFrame:
    """Weak-to-strong search trace as points: every candidate per step, kept beams by rank."""
    rows = []
    for g in generations:
        if g.get("method") != "w2s":
            continue
        for step in g.get("trace") or []:
            kept = step["kept"]
            for i, score in enumerate(step["scores"]):
                kind = f"kept #{kept.index(i) + 1}" if i in kept else "candidate"
                rows.append(
                    {
                        "step": step["step"] + 1,
                        "score": float(score),
                        "kind": kind,
                        "answer": letter(g["position"]),
                    }
                )
    return pd.DataFrame(rows, columns=["step", "score", "kind", "answer"])


def leaderboard_svg(table: pd.DataFrame, width: int = 640) -> str:
    """Horizontal chart of scores with their 95% intervals, as inline SVG."""
    if table.empty:
        return "<p>No blind votes yet.</p>"
    lo, hi = float(table["lo"].min()), float(table["hi"].max())
    span = max(hi - lo, 1.0)
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
