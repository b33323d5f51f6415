"""Twins: identical answers are found, said, win or lose together, and are marked in exports."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.boards import fit_board
from tests.test_store import comparison
from w2s_app.leaderboard import BoardView, build_board
from w2s_app.leaderboard.board import outcomes_from_votes
from w2s_app.store import Store
from w2s_app.store.file_formats import read_frame
from w2s_app.twins import normalize, twin_column, twin_groups, twin_message, twin_of


def test_whitespace_normalised_texts_form_groups_in_input_order():
    answers = [(5, "Paris"), (3, "  Paris\n"), (9, "Paris is the capital."), (4, "Paris  is the\tcapital."),
               (7, "Lyon"), (8, "")]  # fmt: skip
    assert twin_groups(answers) == [[5, 3], [9, 4]]
    assert twin_of(answers) == {5: 3, 3: 3, 9: 4, 4: 4}
    assert twin_groups([(1, "a"), (2, "b")]) == [] and twin_of([]) == {}
    assert twin_groups([(1, ""), (2, " \n ")]) == [[1, 2]]  # two empty answers are the same answer
    assert normalize(" a \n\n b\t") == "a b" and normalize(None) == ""
    # Case and punctuation are part of the answer: these are different.
    assert twin_groups([(1, "Yes."), (2, "yes."), (3, "Yes")]) == []


def test_twin_message_names_the_letters():
    assert twin_message([]) == ""
    assert twin_message([["C", "B"]]).startswith("B and C wrote the same answer")
    said = twin_message([["A", "B", "D"], ["C", "E"]])
    assert "A, B and D wrote the same answer; C and E wrote the same answer" in said


def test_twin_column_ignores_failed_answers_and_other_comparisons():
    gens = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "comparison_id": [10, 10, 10, 11, 11, 11],
            "text": ["x", "x ", "", "x", "", ""],
            "status": ["done", "done", "failed", "done", "done", "failed"],
        }
    )
    # 3 and 6 failed (no answer), 1/2 and 4 are in different comparisons.
    assert twin_column(gens) == [1, 1, None, None, None, None]


def frames(clicked_twin: int, votes_for_other: int = 2, twin_votes: int = 5):
    """Comparisons whose baseline and bon answers are twins; the voter clicks one of the twins or w2s."""
    comps, gens, votes = [], [], []
    for c in range(twin_votes + votes_for_other):
        comps.append({"id": c, "preset": "p"})
        texts = ["Same answer.", " Same  answer.\n", f"Another answer {c}."]
        for j, label in enumerate(["baseline", "bon N4", "w2s W2 K2 L30"]):
            gens.append(
                {"id": c * 10 + j, "comparison_id": c, "label": label, "status": "done", "text": texts[j]}
            )
        chosen = c * 10 + (clicked_twin if c < twin_votes else 2)
        votes.append(
            {"id": c, "comparison_id": c, "choice": "generation", "generation_id": chosen, "blind": True,
             "voter_id": "v"}
        )  # fmt: skip
    return pd.DataFrame(votes), pd.DataFrame(gens), pd.DataFrame(comps)


def test_a_twin_vote_makes_twins_win_together_and_tie_each_other():
    votes, gens, _ = frames(clicked_twin=1, votes_for_other=0, twin_votes=1)
    out = outcomes_from_votes(votes, gens)
    rows = sorted(zip(out["a"], out["b"], out["result"], strict=True))
    assert rows == [
        ("baseline", "bon N4", 0.5),
        ("baseline", "w2s W2 K2 L30", 1.0),
        ("bon N4", "w2s W2 K2 L30", 1.0),
    ]


def test_fit_does_not_depend_on_which_twin_was_clicked():
    first = fit_board(*frames(clicked_twin=0))
    second = fit_board(*frames(clicked_twin=1))
    pd.testing.assert_frame_equal(first.table, second.table)
    pd.testing.assert_frame_equal(first.winrate, second.winrate)
    t = first.table.set_index("entity")
    assert t.loc["baseline", "score"] == t.loc["bon N4", "score"] > t.loc["w2s W2 K2 L30", "score"]
    assert t.loc["baseline", "wins"] == t.loc["bon N4", "wins"] == 5 and t.loc["w2s W2 K2 L30", "wins"] == 2


def store_with_twin_votes(url: str, clicked: int) -> Store:
    """Five comparisons where baseline and bon are twins and the voter clicks `clicked`; two w2s wins."""
    store = Store(url)
    for i in range(7):
        cid = store.create_comparison("Say hi", "offline", {}, "alice", {})
        texts = ("Hello there!", "Hello   there!\n", f"Hi, friend number {i}.")
        gids = store.finish_comparison(cid, comparison(texts), [2, 0, 1])
        store.record_vote(cid, "v", gids[clicked] if i < 5 else gids[2])
    other = store.create_comparison("Say hi", "offline", {}, "alice", {})
    store.finish_comparison(other, comparison(("a", "a", "b")), [0, 1, 2])  # twins, but no vote: no effect
    return store


def test_store_twin_votes_give_the_same_fit_whichever_twin_was_clicked(db_url, postgres_or_sqlite_second_url):
    first = build_board(store_with_twin_votes(db_url, 0), BoardView("offline"))
    second = build_board(store_with_twin_votes(postgres_or_sqlite_second_url, 1), BoardView("offline"))
    pd.testing.assert_frame_equal(first.table, second.table)
    t = first.table.set_index("entity")
    assert t.loc["baseline", "score"] == t.loc["bon N4", "score"] > t.loc["w2s W2 K2 L30", "score"]
    assert t.loc["baseline", "ties"] == 5  # the twins tied each other in every twin vote


@pytest.fixture
def postgres_or_sqlite_second_url(request, db_url, tmp_path):
    """A second empty database of the same kind as db_url."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'second.sqlite3'}"
    return request.getfixturevalue("postgres").new_database()


def test_leaderboard_frames_carry_twin_of(db_url):
    store = store_with_twin_votes(db_url, 0)
    _votes, gens, _comps = store.leaderboard_frames("offline")
    assert "text" not in gens  # texts are read only to find twins
    twins = gens[gens["twin_of"].notna()]
    # Seven voted comparisons with twins; the eighth has twins too but no vote, so its texts stay unread.
    assert len(twins) == 14 and set(twins["label"]) == {"baseline", "bon N4"}
    assert (twins.groupby("comparison_id")["twin_of"].nunique() == 1).all()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_generation_exports_say_which_answers_were_twins(tmp_path, fmt):
    store = store_with_twin_votes(f"sqlite:///{tmp_path / 'db.sqlite3'}", 0)
    back = read_frame(store.export("generations", fmt, tmp_path / f"g.{fmt}"), "generations")
    pd.testing.assert_frame_equal(back, store.export_frame("generations"), check_dtype=False)
    for _cid, gens in back.groupby("comparison_id"):
        by_label = gens.set_index("label")
        first = min(by_label.loc["baseline", "id"], by_label.loc["bon N4", "id"])
        assert by_label.loc["baseline", "twin_of"] == by_label.loc["bon N4", "twin_of"] == first
        assert pd.isna(by_label.loc["w2s W2 K2 L30", "twin_of"])


def test_a_vote_among_answers_that_are_all_twins_ties_every_pair():
    votes, gens, comps = frames(clicked_twin=0, votes_for_other=0, twin_votes=3)
    gens["text"] = "All the same."
    out = outcomes_from_votes(votes, gens)
    assert len(out) == 3 * 3 and (out["result"] == 0.5).all()
    board = fit_board(votes, gens, comps)
    assert list(board.table["score"]) == [1000.0] * 3
    # "wins" counts the votes that chose an answer or its twin; here every answer was chosen.
    assert (board.table["wins"] == 3).all() and (board.table["ties"] == 3).all()


def test_preference_pairs_from_votes_never_reject_a_twin(tmp_path):
    from w2s_app.tuning.preference_pairs import from_votes

    store = store_with_twin_votes(f"sqlite:///{tmp_path / 'db.sqlite3'}", 0)
    pairs = from_votes(store.frame("votes"), store.frame("generations"), store.frame("comparisons"))
    twin_votes = [p for p in pairs if p.chosen == "Hello there!"]
    assert len(twin_votes) == 5 and all(p.rejected.startswith("Hi, friend number") for p in twin_votes)
