"""Export round trip: every table, every format, on SQLite and PostgreSQL, comes back equal."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.test_store import comparison
from w2s_app.store import Store
from w2s_app.store.file_formats import read_frame


def filled_store(url: str) -> Store:
    """A store with awkward values: quotes, commas, newlines, unicode, empty text, nulls, a failure."""
    store = Store(url)
    # The last text and the prompt would be formulas or lose their quote in a careless CSV export.
    texts = ('He said "hi", then\nleft.', "", '=HYPERLINK("http://x") naïve — 日本語 ✓')
    cid = store.create_comparison('\'a,"b"\nc', "offline", {"seed": 3, "t": 0.7}, "alice", {"strong": "s"})
    gids = store.finish_comparison(cid, comparison(texts, error_last=True), [1, 2, 0])
    store.record_vote(cid, "alice", gids[0], seconds_to_vote=2.25)
    store.record_vote(cid, "bob", "tie")
    store.record_rewards("vader-positive", {gids[0]: 0.5, gids[1]: -0.25})
    running = store.create_comparison("still running", "tiny", {}, None, {})
    store.fail_comparison(running, "RuntimeError: out of memory")
    return store


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_round_trip(db_url, tmp_path, fmt):
    store = filled_store(db_url)
    for what in ("comparisons", "generations", "votes", "rewards"):
        path = store.export(what, fmt, tmp_path / f"{what}.{fmt}")
        out = store.export_frame(what)
        back = read_frame(path, what, fmt)
        pd.testing.assert_frame_equal(back, out, check_dtype=False)
        assert len(back) == {"comparisons": 2, "generations": 3, "votes": 2, "rewards": 2}[what]
    # Rows are stored in display order (positions [1, 2, 0]): row j holds the answer shown at j.
    gens = read_frame(tmp_path / f"generations.{fmt}", "generations").set_index("position")
    assert gens.loc[0, "text"].startswith("=HYPERLINK")
    assert read_frame(tmp_path / f"comparisons.{fmt}", "comparisons").loc[0, "prompt"] == '\'a,"b"\nc'
    assert gens.loc[2, "text"] == "" and gens.loc[1, "error"] is None
    assert gens.loc[0, "trace"][0]["scores"] == [1.0, 2.0]
    votes = read_frame(tmp_path / f"votes.{fmt}", "votes")
    assert "alice" not in set(votes["voter_id"]) and votes["voter_id"].str.len().eq(16).all()  # hashed


def test_csv_cells_do_not_start_with_a_formula(tmp_path):
    store = filled_store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    gens = pd.read_csv(
        store.export("generations", "csv", tmp_path / "g.csv"), dtype=str, keep_default_na=False
    )
    assert gens.loc[0, "text"].startswith("'=HYPERLINK")  # rows in display order: position 0 first
    comps = pd.read_csv(
        store.export("comparisons", "csv", tmp_path / "c.csv"), dtype=str, keep_default_na=False
    )
    assert comps.loc[0, "prompt"].startswith("''a")
    for frame in (gens, comps):
        assert not frame.map(lambda v: v.startswith(("=", "+", "-", "@"))).any().any()


def test_export_refuses_unknown_names(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with pytest.raises(ValueError, match="unknown format"):
        store.export("votes", "xlsx", tmp_path / "v.xlsx")
    with pytest.raises(ValueError, match="unknown table"):
        store.export("users", "csv", tmp_path / "u.csv")


def test_a_raters_rewards_export_holds_only_answers_of_comparisons_they_voted_on(tmp_path):
    store = filled_store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert len(store.export_frame("rewards", voter_id="alice")) == 2  # her comparison, voted on
    cid = store.create_comparison("not voted yet", "offline", {"seed": 1}, "alice", {"strong": "s"})
    gids = store.finish_comparison(cid, comparison(), [0, 1, 2])
    store.record_rewards("vader-positive", {gids[0]: 0.9})
    assert len(store.export_frame("rewards", voter_id="alice")) == 2  # a reward would name its answer early
    assert len(store.export_frame("rewards")) == 3  # the admin's export has it
