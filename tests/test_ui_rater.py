"""What the rater reads around the vote: the preset line and wait estimate, twin notes."""

from __future__ import annotations

from tests.test_store import comparison
from w2s_app.arena.letters import twin_letters, twin_note
from w2s_app.arena.votes import reveal
from w2s_app.config import load_presets
from w2s_app.store import Store
from w2s_app.store.recent import recent_seconds, wait_estimate
from w2s_app.ui.rater import preset_choices, preset_line, reveal_twins, wait_text


def stored_with(texts, statuses=("done", "done", "done")) -> dict:
    return {"generations": [{"position": i, "text": t, "status": s, "id": 10 + i} for i, (t, s) in
                            enumerate(zip(texts, statuses, strict=True))]}  # fmt: skip


def test_twin_letters_skip_failed_answers():
    assert twin_letters(stored_with(["x", " x", "y"])) == [["A", "B"]]
    assert twin_letters(stored_with(["", "", "y"], ("done", "failed", "done"))) == []
    assert twin_note(stored_with(["a", "b", "b"])).startswith("B and C wrote the same answer")


def test_wait_estimate_is_the_median_of_recent_finished_comparisons(db_url):
    store = Store(db_url)
    assert wait_estimate(store, "offline") is None
    assert wait_text(None) == "no estimate yet (no finished comparison with this preset)"
    for seconds in (5.0, 1.0, 100.0):
        cid = store.create_comparison("p", "offline", {}, None, {})
        comp = comparison()
        comp.seconds = seconds
        store.finish_comparison(cid, comp, [0, 1, 2])
    store.create_comparison("still running", "offline", {}, None, {})  # no seconds yet: not counted
    failed = store.create_comparison("p", "offline", {}, None, {})
    store.fail_comparison(failed, "boom")
    assert recent_seconds(store, "offline") == [100.0, 1.0, 5.0]  # newest first
    assert recent_seconds(store, "offline", last=2) == [100.0, 1.0]
    assert wait_estimate(store, "offline") == (5.0, 3) and wait_estimate(store, "tiny") is None
    assert wait_text((5.0, 3)) == "about 5 s (median of the last 3 comparisons with this preset)"


def test_preset_menu_and_line():
    presets = load_presets()
    choices = dict((value, label) for label, value in preset_choices(presets))
    assert list(choices) == list(presets)
    assert choices["sentiment-positive"].startswith(
        "sentiment-positive: Movie reviews steered toward positive"
    )
    line = preset_line(presets["offline"], (12.4, 20))
    assert line.startswith("**Preset in use:** `offline`") and "about 12 s (median of the last 20" in line


def test_reveal_names_twins_by_method():
    gens = [{"id": 1, "position": 0, "method": "baseline", "label": "baseline", "params": {}, "score": None,
             "strong_tokens": 3, "guide_tokens": 0, "api_calls": 0, "seconds": 0.1, "status": "done", "error": None,
             "trace": [], "text": "same"}]  # fmt: skip
    gens += [{**gens[0], "id": 2, "position": 1, "method": "bon", "label": "bon N4", "text": " same "}]
    gens += [{**gens[0], "id": 3, "position": 2, "method": "w2s", "label": "w2s W2 K2 L8", "text": "other"}]
    shown = reveal({"generations": gens})
    assert [g["twins"] for g in shown] == [["B"], ["A"], []]
    assert reveal_twins(shown).startswith("Twins: A (baseline) and B (bon N4) wrote the same answer")
    assert reveal_twins(reveal({"generations": gens[1:]})) == ""
