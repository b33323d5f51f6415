"""Store: migrations, persistence, one vote per voter, exports, crash safety (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from w2s_app.contracts import Counts, SamplingParams, SearchResult, TraceStep
from w2s_app.runner import ComparisonResult as Comparison
from w2s_app.store import Store, VoteError, migrate


def comparison(texts=("first", "second", "third"), error_last=False) -> Comparison:
    """A finished comparison as the runner returns it (no models needed to test storage)."""
    results = [
        SearchResult(
            "baseline", {}, texts[0], None, True, [], Counts(strong_tokens=5), 0.5, label="baseline"
        ),
        SearchResult("bon", {"n": 4}, texts[1], 1.5, True, [], Counts(20, 40), 1.0, label="bon N4"),
        SearchResult(
            "w2s",
            {"w": 2, "k": 2, "l": 30},
            texts[2],
            2.5,
            False,
            [TraceStep(0, [-1, -1], ["a", "b"], [1.0, 2.0], [False, True], [1, 0], [False, False])],
            Counts(30, 60),
            2.0,
            "RuntimeError: boom" if error_last else None,
            label="w2s W2 K2 L30",
        ),
    ]
    return Comparison("Say hi, <b>now</b>", "offline", SamplingParams(), results, 3.0)


def stored(store: Store, **kw) -> tuple[int, list[int]]:
    cid = store.create_comparison("Say hi", "offline", {"seed": 0}, "alice", {"strong": "s"})
    comp = comparison(**kw)
    return cid, store.finish_comparison(cid, comp, [2, 0, 1])


def test_migrations_up_down_up(db_url):
    store = Store(db_url)
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"comparison", "generation", "vote", "alembic_version"} <= names
    migrate(store.engine, "base", down=True)
    assert set(sa.inspect(store.engine).get_table_names()) <= {"alembic_version"}
    migrate(store.engine)
    assert {"comparison", "generation", "vote"} <= set(sa.inspect(store.engine).get_table_names())
    store.close()


STARTER = """
import sys
from w2s_app.store import Store
print("ready", flush=True)
sys.stdin.readline()  # every process migrates at the same moment
Store(sys.argv[1]).close()
"""


def start_together(*argvs: list[str]) -> list[subprocess.Popen]:
    """Start Python processes, wait until each says "ready" (imports done), then let them all go."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.communicate(timeout=60)
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    return procs


def test_processes_starting_together_on_a_fresh_database(db_url):
    # Without a migration lock, two of them create the same table and one start-up fails.
    procs = start_together(*[[STARTER, db_url]] * 4)
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    store = Store(db_url, migrate_on_start=False)
    with store.engine.connect() as c:
        assert c.execute(sa.text("select version_num from alembic_version")).scalars().all() == ["0005"]
    store.close()


def test_seeds_up_to_two_to_the_32_fit_every_database(db_url):
    """The page draws a fresh seed in [0, 2**32) for every comparison: PostgreSQL's INTEGER refused
    the upper half (migration 0004 made the column BIGINT)."""
    from dataclasses import replace

    store = Store(db_url)
    comp = comparison()
    comp.sampling = replace(comp.sampling, seed=2**32 - 1)
    cid = store.create_comparison("Say hi", "offline", {"seed": 2**32 - 1}, "alice", {})
    store.finish_comparison(cid, comp, [0, 1, 2])
    assert {g["seed"] for g in store.get_comparison(cid)["generations"]} == {2**32 - 1}
    store.close()


def test_persists_generations_with_failures(db_url):
    store = Store(db_url)
    cid, gids = stored(store, error_last=True)
    got = store.get_comparison(cid)
    assert got["status"] == "done" and len(got["generations"]) == 3
    by_id = {g["id"]: g for g in got["generations"]}
    assert [g["position"] for g in got["generations"]] == [0, 1, 2]
    assert by_id[gids[2]]["status"] == "failed" and "boom" in by_id[gids[2]]["error"]
    assert by_id[gids[2]]["trace"][0]["kept"] == [1, 0]
    assert by_id[gids[1]]["label"] == "bon N4" and by_id[gids[1]]["guide_tokens"] == 40


def test_votes_refused_leave_database_unchanged(db_url):
    store = Store(db_url)
    cid, gids = stored(store)
    _other, other_gids = stored(store)
    running = store.create_comparison("p", "offline", {}, None, {})
    before = store.frame("votes")
    with pytest.raises(VoteError, match="does not exist"):
        store.record_vote(99999, "bob", gids[0])
    with pytest.raises(VoteError, match="not part of comparison"):
        store.record_vote(cid, "bob", other_gids[0])
    with pytest.raises(VoteError, match="has not finished"):
        store.record_vote(running, "bob", "tie")
    with pytest.raises(VoteError, match="unknown choice"):
        store.record_vote(cid, "bob", "best")
    with pytest.raises(VoteError, match="does not exist"):
        store.record_vote("12; drop table vote", "bob", "tie")
    failed_cid, failed_gids = stored(store, error_last=True)
    with pytest.raises(VoteError, match="that answer failed"):
        store.record_vote(failed_cid, "bob", failed_gids[2])
    pd.testing.assert_frame_equal(before, store.frame("votes"))
    store.record_vote(cid, "bob", gids[1], seconds_to_vote=4.2)
    with pytest.raises(VoteError, match="already voted"):
        store.record_vote(cid, "bob", "tie")
    store.record_vote(cid, "carol", "all_bad")
    votes = store.frame("votes")
    assert list(votes["choice"]) == ["generation", "all_bad"] and votes["blind"].all()


def test_one_vote_under_two_concurrent_writers(db_url):
    setup = Store(db_url)
    cid, gids = stored(setup)
    stores = [Store(db_url, migrate_on_start=False) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes = []

    def vote(i):
        barrier.wait()
        try:
            stores[i].record_vote(cid, "same-voter", gids[i])
            outcomes.append("ok")
        except VoteError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=vote, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("ok") == 1 and any("already voted" in o for o in outcomes), outcomes
    assert len(setup.frame("votes")) == 1


VOTER = """
import sys
from w2s_app.store import Store, VoteError
store = Store(sys.argv[1], migrate_on_start=False)
print("ready", flush=True)
sys.stdin.readline()  # both processes vote at the same moment
try:
    store.record_vote(int(sys.argv[2]), "same-voter", int(sys.argv[3]))
    print("ok")
except VoteError as exc:
    print(exc)
"""


def test_one_vote_under_two_concurrent_processes(db_url):
    store = Store(db_url)
    cid, gids = stored(store)
    procs = start_together(*[[VOTER, db_url, str(cid), str(gid)] for gid in gids[:2]])
    outs = [p.communicate(timeout=120) for p in procs]
    said = sorted(out.strip() for out, _err in outs)
    assert said == ["ok", "you already voted on this comparison"], outs
    votes = store.frame("votes")
    assert len(votes) == 1 and votes["generation_id"].iloc[0] in gids[:2]


def test_kill_9_mid_batch_leaves_whole_rows(tiny_env, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Question {i}?"}) + "\n" for i in range(200)))
    db = tmp_path / "data" / "w2s.sqlite3"
    # Scripted words at 20 ms a step (the fake-slow preset): about half a second per comparison, so
    # the kill lands mid-batch; the subject is the store, not a model.
    cmd = [sys.executable, "-m", "w2s_app", "batch", "--preset", "fake-slow", "--input", str(prompts),
           "--output", str(tmp_path / "o.jsonl"), "--methods", "baseline,bon,w2s", "--max-new-tokens", "12"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        deadline = time.time() + 300  # generous: CI machines are slow and shared
        done = 0
        while time.time() < deadline and done < 3:
            time.sleep(0.5)
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=5) as c:
                        done = c.execute("select count(*) from comparison where status='done'").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
        assert done >= 3, "batch did not store comparisons in time"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with sqlite3.connect(db) as c:
        assert c.execute("pragma integrity_check").fetchone()[0] == "ok"
        rows = c.execute(
            "select c.id, c.status, count(g.id) from comparison c left join generation g"
            " on g.comparison_id = c.id group by c.id"
        ).fetchall()
        gens = c.execute(
            "select g.comparison_id, g.position, g.status, g.text from generation g"
            " join comparison c on c.id = g.comparison_id where c.status = 'done'"
        ).fetchall()
    for _cid, status, n in rows:
        assert (status, n) in {("done", 3), ("running", 0)}, rows
    for cid in {g[0] for g in gens}:  # finished rows are whole: every answer, every display slot
        mine = [g for g in gens if g[0] == cid]
        assert sorted(g[1] for g in mine) == [0, 1, 2] and all(
            g[2] == "done" and g[3] is not None for g in mine
        )
    store = Store(f"sqlite:///{db}")  # opens and migrates fine afterwards
    assert store.count("comparisons") == len(rows)


def test_leaderboard_reads_the_store(db_url):
    from tests.boards import fit_board
    from w2s_app.leaderboard import BoardView, build_board

    store = Store(db_url)
    for i in range(6):
        cid, gids = stored(store)
        store.record_vote(cid, "v", gids[2] if i < 5 else "tie")  # w2s wins five, one tie
    other = store.create_comparison("p", "tiny", {}, None, {})
    gids = store.finish_comparison(other, comparison(), [0, 1, 2])
    store.record_vote(other, "v", gids[0])  # another preset: must not count for 'offline'
    cid, gids = stored(store)
    store.record_vote(cid, "v", gids[0], blind=False)  # revealed first: must not count
    board = build_board(store, BoardView("offline"))
    assert board.counts == {"votes": 6, "comparisons": 6, "ties": 1, "all_bad": 0}
    top = board.table.iloc[0]
    assert top["entity"] == "w2s W2 K2 L30" and top["wins"] == 5 and top["ties"] == 1
    everything = (store.frame("votes"), store.frame("generations"), store.frame("comparisons"))
    same = fit_board(*everything, preset="offline")  # whole tables: the preset and blind filters apply
    pd.testing.assert_frame_equal(board.table, same.table)
    assert build_board(store, BoardView("tiny")).counts["votes"] == 1
