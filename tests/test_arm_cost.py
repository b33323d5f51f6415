"""Cost beside score (leaderboard/cost.py): every arm's median cost from the stored answers, and each
w2s arm paired with the best-of-N arm nearest to its strong-token cost, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.test_voter_influence import arena
from w2s_app.leaderboard.cache import BoardView, build_board
from w2s_app.leaderboard.report import board_json, board_text


def test_each_arm_has_its_median_cost_and_w2s_meets_the_nearest_bon(db_url):
    store = arena(db_url, honest_voters=12)
    board = build_board(store, BoardView(preset="offline"))
    costs = board.costs.set_index("entity")
    # tests/test_store.comparison: baseline 5 strong tokens in 0.5 s; bon N4 20 + 40 guide in 1 s;
    # w2s 30 + 60 in 2 s; every comparison stores one answer of each.
    assert costs.loc["baseline", ["strong_tokens", "guide_tokens", "seconds"]].tolist() == [5, 0, 0.5]
    assert costs.loc["bon N4", ["strong_tokens", "guide_tokens", "seconds"]].tolist() == [20, 40, 1.0]
    assert costs.loc["w2s W2 K2 L30", ["strong_tokens", "guide_tokens", "seconds"]].tolist() == [30, 60, 2.0]
    assert costs["answers"].tolist() == [36, 36, 36]
    (match,) = board_json(board)["compute_matched"]
    assert (match["search"], match["bon"], match["search_tokens"], match["bon_tokens"]) == (
        "w2s W2 K2 L30", "bon N4", 30, 20,
    )  # fmt: skip
    table = board.table.set_index("entity")
    expected = table.loc["w2s W2 K2 L30", "score"] - table.loc["bon N4", "score"]
    assert abs(match["difference"] - expected) <= 0.2  # the board's own gap, rounded to 0.1 Elo
    assert match["difference_lo"] < match["difference"] < match["difference_hi"]
    assert "compute-matched" in board_text(board)
    store.close()
