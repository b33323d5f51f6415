"""What the page draws after a vote: the search trace, column titles; and who counts as the voter."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import gradio as gr
import pytest

from w2s_app.arena import ArenaError
from w2s_app.arena.caller import verified_voter
from w2s_app.ui.render import column_label, trace_svg

SVG = "{http://www.w3.org/2000/svg}"
# W=2, K=2: step 1 samples 4 chunks from the prompt, keeps candidates 1 and 3 (best first);
# step 2 grows 2 successors from each kept beam and keeps 3 (parent 1) then 1 (parent 0).
TRACE = [
    {"step": 0, "parents": [-1, -1, -1, -1], "scores": [1.0, 4.0, 2.0, 3.0], "kept": [1, 3],
     "chunks": ["a", "b", "c", "d"], "finished": [False] * 4, "carried": []},
    {"step": 1, "parents": [0, 0, 1, 1], "scores": [5.0, 6.0, 2.0, 7.0], "kept": [3, 1],
     "chunks": ["e", "f", "g", "h"], "finished": [True] * 4, "carried": []},
]  # fmt: skip


def gen(method: str, position: int, **kw) -> dict:
    base = {"method": method, "position": position, "label": method, "status": "done", "score": 7.0,
            "strong_tokens": 16, "seconds": 1.25, "trace": []}  # fmt: skip
    return {**base, **kw}


def test_trace_svg_draws_every_candidate_and_joins_kept_beams_to_their_parents():
    svg = trace_svg([gen("baseline", 0), gen("w2s", 2, label="w2s W2 K2 L8", trace=TRACE)])
    root = ET.fromstring(svg)
    circles = [c for c in root.iter(f"{SVG}circle") if c.get("class")]
    assert sorted(c.get("class") for c in circles) == ["candidate"] * 4 + ["kept"] * 4
    assert "answer C" in svg
    y = {(c.get("cx"), c.find(f"{SVG}title").text.split(": ")[1]): float(c.get("cy")) for c in circles}
    lines = [ln for ln in root.iter(f"{SVG}line") if ln.get("stroke") == "#e07a1f"]
    assert len(lines) == 2  # one per kept beam of step 2; step 1 grew from the prompt
    # Higher scores are drawn higher: kept 7.0 (from the step-1 beam scored 3.0) above kept 6.0.
    ends = sorted((float(ln.get("y2")), float(ln.get("y1"))) for ln in lines)
    by_score = {score: cy for (_, score), cy in y.items()}
    assert ends == sorted([(by_score["7.00"], by_score["3.00"]), (by_score["6.00"], by_score["4.00"])])
    assert by_score["7.00"] < by_score["6.00"] < by_score["1.00"]


def test_trace_svg_is_empty_without_a_w2s_answer():
    assert trace_svg([gen("baseline", 0), gen("bon", 1)]) == ""


def test_column_label_names_method_score_tokens_seconds():
    assert (
        column_label(gen("w2s", 1, label="w2s W2 K2 L8"))
        == "Response B: w2s W2 K2 L8 · score 7.00 · 16 tokens · 1.2 s"
    )
    assert column_label(gen("baseline", 0, score=None)) == "Response A: baseline · 16 tokens · 1.2 s"
    assert column_label(gen("eft", 2, status="failed")) == "Response C: eft (failed)"


def test_voter_is_the_hugging_face_user_when_logged_in_else_the_tokens():
    from types import SimpleNamespace

    from w2s_app.identity import Identity

    services = SimpleNamespace(identity=Identity(b"render-test-secret-0123456789"))
    profile = gr.OAuthProfile({"preferred_username": "ada", "name": "Ada", "picture": "", "profile": ""})
    token = services.identity.issue()
    assert verified_voter(services, token, profile).id == "hf:ada"
    assert verified_voter(services, token, None).id.startswith("t:")
    assert verified_voter(services, token, None) == services.identity.verify(token)
    with pytest.raises(ArenaError, match="not a voter token"):
        verified_voter(services, "browser-1", None)


def test_leaderboard_chart_centres_equal_scores_and_orders_intervals():
    import pandas as pd

    from w2s_app.ui.render import leaderboard_svg

    tied = pd.DataFrame(
        {"entity": ["a", "b"], "score": [1000.0, 1000.0], "lo": [1000.0] * 2, "hi": [1000.0] * 2}
    )
    xs = {float(c.get("cx")) for c in ET.fromstring(leaderboard_svg(tied)).iter(f"{SVG}circle")}
    assert len(xs) == 1 and 180 < xs.pop() < 640 - 30  # inside the plot area, not on its left edge
    spread = pd.DataFrame({"entity": ["w2s", "base"], "score": [1100.0, 900.0], "lo": [1050.0, 850.0],
                           "hi": [1150.0, 950.0]})  # fmt: skip
    root = ET.fromstring(leaderboard_svg(spread))
    cx = [float(c.get("cx")) for c in root.iter(f"{SVG}circle")]
    bars = [(float(ln.get("x1")), float(ln.get("x2"))) for ln in root.iter(f"{SVG}line")]
    assert cx[0] > cx[1] and all(x1 < x < x2 for x, (x1, x2) in zip(cx, bars))


def test_progress_tells_no_column_apart():
    from w2s_app.arena.compare import WRITING, _blind_update

    upd = _blind_update([1.0, 0.0, 0.5], "generating… 3 s")
    assert upd.texts == [WRITING] * 3 and upd.fractions == [0.5] * 3 and "50%" in upd.status
