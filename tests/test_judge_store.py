"""Judge runs on a real database (SQLite file, PostgreSQL) with a fake judge: storage, resumption,
failures, and boards by source: people's board never sees a judge's vote.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.boards import fit_board
from tests.judge_support import FakeJudge, garbage, prefers, server_down
from tests.test_store import comparison
from w2s_app.judge.prompt import PROMPT_VERSION
from w2s_app.judge.run import run_judge
from w2s_app.leaderboard.agreement import agreement_view
from w2s_app.leaderboard.cache import BoardView, LeaderboardCache, build_board
from w2s_app.leaderboard.quality import voter_table
from w2s_app.leaderboard.report import board_json, board_text
from w2s_app.leaderboard.vote_sources import resolve_source, source_options
from w2s_app.store import Store, VoteError, migrate
from w2s_app.store.file_formats import read_frame

JUDGE = "judge:fake-judge"


def arena(url: str, n: int = 6, preset: str = "offline") -> tuple[Store, list[list[int]]]:
    """n finished comparisons; in each, the bon answer says 'good' (a fake judge's favourite)."""
    store = Store(url)
    gids = []
    for i in range(n):
        cid = store.create_comparison(f"Question {i}?", preset, {}, "alice", {})
        texts = (f"plain answer {i}", f"good answer {i}", f"long answer {i} " * 5)
        gids.append(store.finish_comparison(cid, comparison(texts), [2, 0, 1]))
    return store, gids


def people_vote(store: Store, gids: list[list[int]], pick: int = 2) -> None:
    """A person votes for answer `pick` (w2s by default) on every comparison."""
    for cid, ids in enumerate(gids, 1):
        store.record_vote(cid, "person", ids[pick])


def test_a_run_stores_votes_pairs_and_cost_then_resumes_with_only_what_is_new(db_url):
    store, gids = arena(db_url)
    judge = FakeJudge(prefers("good"))
    first = run_judge(store, judge, preset="offline", limit=4, progress=False)
    assert (first.todo, first.judged, first.failed, first.errors) == (4, 4, 0, 0)
    assert first.calls == 4 * 6 and first.prompt_tokens == 4 * 600 and dict(first.votes) == {"pick": 4}
    second = run_judge(store, judge, preset="offline", concurrency=3, progress=False)
    assert (second.todo, second.judged) == (2, 2)
    assert run_judge(store, judge, preset="offline", progress=False).todo == 0
    assert len(judge.requests) == 6 * 6  # nothing was asked twice
    votes = store.frame("votes").sort_values("comparison_id")  # written as they finish: any order
    assert list(votes["voter_id"]) == [JUDGE] * 6
    assert list(votes["generation_id"]) == [ids[1] for ids in gids]  # the 'good' answer each time
    rows = store.judgement_frame(judge=JUDGE, with_calls=True)
    assert (
        len(rows) == 18
        and set(rows["status"]) == {"judged"}
        and set(rows["prompt_version"]) == {PROMPT_VERSION}
    )
    assert (
        rows["vote_id"].notna().all() and (rows["prompt_tokens"] == 200).all() and (rows["seconds"] > 0).all()
    )
    call = rows["calls"].iloc[0][0]
    assert call["replies"] and call["reason"] == "because" and call["verdict"] in ("A", "B", "tie")
    # A new comparison is picked up by the next run.
    cid = store.create_comparison("One more?", "offline", {}, "alice", {})
    store.finish_comparison(cid, comparison(("a", "good b", "c")), [0, 1, 2])
    assert run_judge(store, judge, preset="offline", progress=False).judged == 1


def test_unreadable_comparisons_are_recorded_and_skipped_until_asked_to_retry(db_url):
    store, _ = arena(db_url, n=3)
    report = run_judge(store, FakeJudge(garbage), preset="offline", progress=False)
    assert (report.judged, report.failed) == (0, 3) and "unreadable" in report.summary()
    rows = store.judgement_frame(judge=JUDGE)
    assert len(rows) == 3 and set(rows["status"]) == {"unparsable"} and rows["vote_id"].isna().all()
    assert store.count("votes") == 0
    assert run_judge(store, FakeJudge(garbage), preset="offline", progress=False).todo == 0
    fixed = run_judge(store, FakeJudge(prefers("good")), preset="offline", retry_failed=True, progress=False)
    assert fixed.judged == 3 and store.count("votes") == 3
    assert set(store.judgement_frame(judge=JUDGE)["status"]) == {"judged"}  # the failures were replaced


def test_server_failures_record_nothing_and_stop_the_run_early(db_url):
    store, _ = arena(db_url, n=8)
    report = run_judge(store, FakeJudge(server_down), preset="offline", concurrency=1, progress=False)
    assert report.errors == 3 and report.judged == 0 and "stopped" in report.stopped
    assert store.count("votes") == 0 and store.judgement_frame().empty
    assert "rerun to retry" in report.summary()
    assert run_judge(store, FakeJudge(prefers("good")), preset="offline", progress=False).judged == 8


def test_filters_preset_and_since(db_url):
    store, _ = arena(db_url, n=2)
    arena_other = store.create_comparison("Elsewhere", "other", {}, "alice", {})
    store.finish_comparison(arena_other, comparison(), [0, 1, 2])
    running = store.create_comparison("Not finished", "offline", {}, "alice", {})
    assert running not in store.judge_todo(JUDGE, PROMPT_VERSION)
    assert store.judge_todo(JUDGE, PROMPT_VERSION, preset="offline") == [1, 2]
    assert store.judge_todo(JUDGE, PROMPT_VERSION) == [1, 2, arena_other]
    future = pd.Timestamp.now(tz="UTC").to_pydatetime() + pd.Timedelta(hours=1)
    assert store.judge_todo(JUDGE, PROMPT_VERSION, since=future) == []
    assert store.judge_todo(JUDGE, PROMPT_VERSION, since=future - pd.Timedelta(days=1)) == [1, 2, arena_other]


def test_peoples_board_never_sees_a_judge_and_the_judge_board_differs(db_url):
    store, gids = arena(db_url)
    people_vote(store, gids)  # people like the w2s answer
    before = build_board(store, BoardView("offline"))
    run_judge(store, FakeJudge(prefers("good")), preset="offline", progress=False)  # the judge likes bon
    after = build_board(store, BoardView("offline"))
    pd.testing.assert_frame_equal(before.table, after.table)
    assert after.counts["votes"] == 6 and after.vote_source == "humans"
    assert after.judges == [JUDGE] and after.agreement is None  # the switch's choices, from the cache
    # The whole vote table holds the judge's votes: people's board of it still drops them.
    whole = fit_board(store.frame("votes"), store.frame("generations"), store.frame("comparisons"), "offline")
    pd.testing.assert_frame_equal(whole.table, before.table)
    judged = build_board(store, BoardView("offline", vote_source=JUDGE))
    assert judged.table.iloc[0]["entity"] == "bon N4" and before.table.iloc[0]["entity"] == "w2s W2 K2 L30"
    assert judged.counts["votes"] == 6 and judged.table.set_index("entity").loc["bon N4", "wins"] == 6
    # Each judged comparison gave three pair outcomes: bon beat both, the other two tied.
    pairs = judged.pairs.set_index(["a", "b"])
    assert (
        pairs.loc[("baseline", "bon N4"), "losses"] == 6
        and pairs.loc[("baseline", "w2s W2 K2 L30"), "ties"] == 6
    )
    both = build_board(store, BoardView("offline", vote_source="humans+" + JUDGE))
    assert both.counts["votes"] == 12
    # A judge's board carries its agreement with people: here they never pick the same answer.
    assert judged.agreement.items == 6 and judged.agreement.agree == 0 and both.agreement.items == 6
    assert "agreed with people 0 times" in board_text(judged)
    styled = build_board(store, BoardView("offline", style_control=True, vote_source=JUDGE))
    assert styled.style and len(styled.table) == 3
    assert "source: judge:fake-judge" in board_text(judged) and board_json(judged)["source"] == JUDGE
    # The cache keeps one board per source.
    cache = LeaderboardCache(store, min_interval=0)
    assert cache.get(BoardView("offline")) is not cache.get(BoardView("offline", vote_source=JUDGE))
    assert cache.fits == 2


def test_sources_offered_and_resolved(db_url):
    store, _ = arena(db_url, n=2)
    assert source_options(store.judges()) == ["humans"]
    with pytest.raises(ValueError, match="exactly one judge"):
        resolve_source("judge", store.judges())
    run_judge(store, FakeJudge(prefers("good")), preset="offline", progress=False)
    judges = store.judges("offline")
    assert judges == [JUDGE] and store.judges("other") == []
    assert source_options(judges) == ["humans", JUDGE, "humans+" + JUDGE]
    assert resolve_source("judge", judges) == JUDGE and resolve_source("both", judges) == "humans+" + JUDGE
    assert resolve_source("fake-judge", judges) == JUDGE
    with pytest.raises(ValueError, match="no votes from judge:other"):
        resolve_source("judge:other", judges)
    with pytest.raises(ValueError, match="unknown source"):
        build_board(store, BoardView("offline", vote_source="robots"))


def test_judge_voter_ids_are_reserved_and_exports_switch_by_source(db_url):
    store, gids = arena(db_url, n=2)
    with pytest.raises(VoteError, match="reserved for automatic judges"):
        store.record_vote(1, "judge:sneaky", gids[0][0])
    people_vote(store, gids)
    run_judge(store, FakeJudge(prefers("good")), preset="offline", progress=False)
    people = store.export_frame("votes", salt="s")
    assert len(people) == 2 and JUDGE not in set(people["voter_id"])  # people only, by default
    assert list(store.export_frame("votes", vote_source=JUDGE)["voter_id"]) == [JUDGE] * 2
    voters = set(store.export_frame("votes", salt="s", vote_source="all")["voter_id"])
    assert (
        JUDGE in voters and "person" not in voters and len(voters) == 2
    )  # a judge keeps its name; people are hashed
    assert len(store.export_frame("votes", vote_source="humans+" + JUDGE)) == 4
    with pytest.raises(ValueError, match="unknown source"):
        store.export_frame("votes", vote_source="robots")
    # The per-voter admin table is about people.
    votes, gens, _ = store.leaderboard_frames()
    assert list(voter_table(votes, gens)["voter"]) == ["person"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_judgements_export_round_trips(tmp_path, fmt):
    store, gids = arena(f"sqlite:///{tmp_path / 'db.sqlite3'}", n=2)
    people_vote(store, gids)
    run_judge(store, FakeJudge(prefers("good")), preset="offline", progress=False)
    back = read_frame(store.export("judgements", fmt, tmp_path / f"j.{fmt}"), "judgements")
    pd.testing.assert_frame_equal(back, store.export_frame("judgements"), check_dtype=False)
    assert len(back) == 6 and back["calls"].iloc[0][0]["replies"]
    mine = store.export_frame("judgements", voter_id="alice")  # alice made them but did not vote: nothing
    assert mine.empty


def test_agreement_view_from_the_store(db_url):
    store, gids = arena(db_url)
    people_vote(store, gids, pick=1)  # people also like the 'good' answer
    run_judge(store, FakeJudge(prefers("good")), preset="offline", progress=False)
    view = agreement_view(store, JUDGE, "offline")
    assert (view.items, view.agree, view.share) == (6, 6, 1.0)
    assert view.pairs.set_index(["a", "b"]).loc[("bon N4", "w2s W2 K2 L30"), "agree"] == 1.0


def test_migration_0003_adds_and_removes_the_judgement_table(db_url):
    store = Store(db_url)
    assert "judgement" in sa.inspect(store.engine).get_table_names()
    migrate(store.engine, "0002", down=True)
    assert "judgement" not in sa.inspect(store.engine).get_table_names()
    migrate(store.engine)
    assert "judgement" in sa.inspect(store.engine).get_table_names()
    store.close()
