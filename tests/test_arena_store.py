"""Public-arena parts on a real database (SQLite and PostgreSQL): limits shared by replicas, tokens
across replicas, the cached leaderboard, vote-quality filters, start-up recovery, public ids.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa

from tests.test_store import comparison
from w2s_app.config import Settings
from w2s_app.errors import RateLimited
from w2s_app.identity import Identity, IdentityError
from w2s_app.leaderboard.cache import BoardView, LeaderboardCache
from w2s_app.leaderboard.quality import filter_votes, one_position_voters, voter_table
from w2s_app.limits import Limits, LimitSettings, client_address
from w2s_app.search import comparison_cost
from w2s_app.store import Store
from w2s_app.store.database import RUNNER_ID


def test_two_replicas_share_limits(db_url):
    # Two stores on one database stand for two app replicas: together they allow `limit` events.
    replicas = [Limits(Store(db_url), LimitSettings()) for _ in range(2)]
    passed, refused = [], []

    def hit(lim: Limits) -> None:
        try:
            lim.hit("addr:same", "vote", 5)
            passed.append(1)
        except RateLimited as exc:
            assert exc.retry_after and "try again in" in str(exc)
            refused.append(1)

    threads = [threading.Thread(target=hit, args=(replicas[i % 2],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(passed) == 5 and len(refused) == 11
    replicas[0].hit("addr:other", "vote", 5)  # other keys are not affected


def test_tokens_verify_on_every_replica_with_the_same_secret(tmp_path):
    a, b = Identity(b"shared-secret-0123456789"), Identity(b"shared-secret-0123456789")
    token = a.issue()
    assert b.verify(token).id == a.verify(token).id
    with pytest.raises(IdentityError):
        Identity(b"another-secret-0123456789").verify(token)
    old = Identity(b"shared-secret-0123456789", max_age_s=-1)
    with pytest.raises(IdentityError, match="expired"):
        old.verify(old.issue())


def test_generated_secret_is_kept_once_in_the_data_dir(tmp_path):
    code = (
        "import sys; from w2s_app.identity import load_secret; print(load_secret(sys.argv[1], None).decode())"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]  # fmt: skip
    secrets = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(secrets) == 1 and (tmp_path / "secret.key").stat().st_mode & 0o077 == 0


def test_client_address_trusts_forwarded_for_only_from_proxies():
    assert client_address("8.8.4.4", "1.2.3.4", ()) == "8.8.4.4"
    assert client_address("8.8.4.4", "1.2.3.4", ("private",)) == "8.8.4.4"
    assert client_address("10.0.0.2", "1.2.3.4, 10.0.0.7", ("private",)) == "1.2.3.4"
    assert client_address("10.0.0.2", "6.6.6.6, 1.2.3.4", ("10.0.0.0/8",)) == "1.2.3.4"


def test_client_address_reads_every_forwarded_line_to_the_last_untrusted_hop():
    # HAProxy's `option forwardfor` adds a line of its own below the client's forged one.
    assert client_address("127.0.0.1", ["6.6.6.6", "1.2.3.4"], ("127.0.0.1",)) == "1.2.3.4"
    assert client_address("127.0.0.1", ["6.6.6.6, 7.7.7.7", "1.2.3.4:5678"], ("127.0.0.1",)) == "1.2.3.4"
    # The standard Forwarded header, when no X-Forwarded-For line came: quotes, brackets and ports go.
    forwarded = ["for=6.6.6.6;proto=http", 'for="[2606:4700::1111]:4711", for=10.0.0.3']
    assert client_address("10.0.0.2", None, ("private",), forwarded) == "2606:4700::1111"
    assert client_address("10.0.0.2", [], ("private",), ["For=1.2.3.4;by=10.0.0.2"]) == "1.2.3.4"
    # From an untrusted peer neither header counts; all hops trusted: the peer.
    assert client_address("8.8.8.8", ["1.2.3.4"], ("private",), ["for=5.5.5.5"]) == "8.8.8.8"
    assert client_address("10.0.0.2", ["10.0.0.9"], ("private",)) == "10.0.0.2"


def test_comparison_cost():
    default = [("baseline", {}), ("bon", {"n": 4}), ("w2s", {"w": 2, "k": 2, "l": 30})]
    cap = Settings.max_cost  # the declared default of W2S_MAX_COST
    assert comparison_cost(default, 96) == 96 + 768 + 768 <= cap
    assert comparison_cost([("bon", {"n": 64})], 4096) > cap


def voted_store(url: str) -> tuple[Store, list[int]]:
    store = Store(url)
    gids = []
    for i in range(4):
        cid = store.create_comparison(f"q{i}", "offline", {}, "alice", {})
        gids.append(store.finish_comparison(cid, comparison(), [0, 1, 2]))
    return store, gids


def test_cached_leaderboard_fits_once_per_change(db_url):
    store, gids = voted_store(db_url)
    store.record_vote(1, "alice", gids[0][1])
    cache = LeaderboardCache(store, min_interval=0)
    boards = [cache.get(BoardView("offline")) for _ in range(50)]
    assert cache.fits == 1 and all(b is boards[0] for b in boards)
    assert cache.refresh() == 0  # nothing changed: nothing refitted
    store.record_vote(2, "alice", gids[1][2])
    assert cache.refresh() == 1 and cache.fits == 2
    assert cache.get(BoardView("offline")).counts["votes"] == 2


def test_vote_quality_filters_and_voter_table(db_url):
    store, gids = voted_store(db_url)
    for c in range(3):  # bob always picks position 0; carol varies
        store.record_vote(c + 1, "bob", gids[c][0])
    store.record_vote(1, "carol", gids[0][1])
    store.record_vote(2, "carol", gids[1][2])
    store.record_vote(4, "carol", "tie")
    votes, gens, _ = store.leaderboard_frames()
    assert one_position_voters(votes, gens) == {"bob"}
    kept = filter_votes(votes, gens, drop_one_position=True)
    assert set(kept["voter_id"]) == {"carol"}
    votes["seconds_shown"] = [0.5 if v == "carol" else 5.0 for v in votes["voter_id"]]  # carol clicks fast
    assert set(filter_votes(votes, gens, min_seconds=1.0)["voter_id"]) == {"bob"}
    table = voter_table(votes, gens).set_index("voter")
    assert table.loc["bob", "position_share"] == 1.0 and table.loc["bob", "top_position"] == "A"
    assert table.loc["carol", "votes"] == 3 and table.loc["carol", "picks"] == 2
    assert 0 <= table.loc["carol", "agreement"] <= 1


def test_recover_running_marks_only_dead_processes(db_url):
    store = Store(db_url)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    host = RUNNER_ID.split(":")[0]
    ids = [store.create_comparison(f"q{i}", "offline", {}, "v", {}) for i in range(3)]
    owners = {
        ids[0]: f"{host}:{dead.stdout.strip()}:abcd",
        ids[1]: f"{host}:{os.getppid()}:abcd",
        ids[2]: RUNNER_ID,
    }
    with store.engine.begin() as conn:
        for cid, owner in owners.items():
            conn.execute(sa.text("update comparison set runner_id=:o where id=:i"), {"o": owner, "i": cid})
    assert store.recover_running(older_than_seconds=3600) == 1
    status = {cid: store.get_comparison(cid)["status"] for cid in ids}
    assert status == {ids[0]: "failed", ids[1]: "running", ids[2]: "running"}
    assert "interrupted" in store.get_comparison(ids[0])["error"]
    assert store.recover_running(older_than_seconds=-1) == 2  # older than any live comparison may run


def test_public_ids_and_generation_rows_leak_no_order(db_url):
    store = Store(db_url)
    cid = store.create_comparison("q", "offline", {}, "v", {})
    gids = store.finish_comparison(cid, comparison(), [2, 0, 1])
    stored = store.get_comparison(cid)
    assert len(stored["public_id"]) == 16 and store.comparison_by_public_id(stored["public_id"])["id"] == cid
    by_id = sorted(stored["generations"], key=lambda g: g["id"])
    assert [g["position"] for g in by_id] == [0, 1, 2]  # ids follow display order, not method order
    assert [store_gen["method"] for store_gen in by_id] == ["bon", "w2s", "baseline"]
    assert gids == [by_id[2]["id"], by_id[0]["id"], by_id[1]["id"]]


def test_old_export_folders_are_deleted(tmp_path, monkeypatch):
    import tempfile

    from w2s_app.arena.records import EXPORT_PREFIX, clean_exports

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old, new = tmp_path / f"{EXPORT_PREFIX}old", tmp_path / f"{EXPORT_PREFIX}new"
    for folder in (old, new):
        folder.mkdir()
        (folder / "w2s-votes.csv").write_text("id\n")
    os.utime(old, (0, time.time() - 3600))
    assert clean_exports(600) == 1
    assert not old.exists() and new.exists()


def test_an_echoed_api_key_is_redacted(monkeypatch):
    from w2s_app.runner import redact_secrets

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    text = redact_secrets("the key is sk-test-0123456789abcdef, as you asked")
    assert "sk-test" not in text and "[redacted]" in text


def test_migration_0002_gives_existing_comparisons_public_ids(db_url):
    from w2s_app.store import migrate

    store = Store(db_url, migrate_on_start=False)
    migrate(store.engine, "0001")
    with store.engine.begin() as conn:
        for i in range(3):
            conn.execute(
                sa.text(
                    "insert into comparison (prompt, preset, settings, models, status, created_at) "
                    "values (:p, 'offline', '{}', '{}', 'done', CURRENT_TIMESTAMP)"
                ),
                {"p": f"old {i}"},
            )
    migrate(store.engine)
    with store.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("select public_id from comparison"))]
    assert len(set(ids)) == 3 and all(len(i) == 16 for i in ids)
    migrate(store.engine, "0001", down=True)  # and back down: the columns go, the rows stay
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from comparison")).scalar() == 3
