"""The runner persists comparisons through a real Store: failed methods and failed runs included."""

from __future__ import annotations

import dataclasses

import pytest

from tests.engines import compare
from w2s_app.config import Settings
from w2s_app.engines.reference import ReferenceEngine
from w2s_app.runner import RequestLimits
from w2s_app.store import Store, VoteError
from w2s_app.wiring import ENGINES, build_runner


def make_runner(pool, **changes):
    settings = dataclasses.replace(Settings.from_env(), **changes)
    return build_runner(settings, Store.from_settings(settings), pool)


@pytest.fixture
def runner(tiny_env, pool):
    return make_runner(pool)


def test_failed_method_is_stored_with_its_error(runner):
    # eft needs one vocabulary; the cross-tokenizer preset makes it fail while baseline succeeds.
    comp = compare(runner, "Say hi.", "tiny-cross", ["baseline", "eft"], {"max_new_tokens": 6}, voter_id="u1")
    row = runner.store.get_comparison(comp.id)
    assert row["status"] == "done" and row["voter_id"] == "u1" and row["settings"]["max_new_tokens"] == 6
    by_id = {g["id"]: g for g in row["generations"]}
    assert list(by_id) == sorted(by_id, key=lambda g: by_id[g]["position"])
    for result, gid, pos in zip(comp.results, comp.generation_ids, comp.positions, strict=True):
        assert by_id[gid]["method"] == result.method and by_id[gid]["position"] == pos
        assert by_id[gid]["text"] == result.text
    base, eft = (by_id[g] for g in comp.generation_ids)
    assert base["status"] == "done" and base["strong_tokens"] > 0
    assert eft["status"] == "failed" and eft["error"]
    with pytest.raises(VoteError, match="that answer failed"):
        runner.store.record_vote(comp.id, "u1", eft["id"])
    assert runner.store.record_vote(comp.id, "u1", base["id"])


class DeviceLost(ReferenceEngine):
    """The real reference engine, until the device goes away mid-run."""

    def answer_ready(self, asked):
        raise RuntimeError("device lost")


class Interrupted(ReferenceEngine):
    """The real reference engine, until someone presses Ctrl-C."""

    def answer_ready(self, asked):
        raise KeyboardInterrupt


def test_engine_error_fails_every_method_but_keeps_the_rows(tiny_env, pool, monkeypatch):
    monkeypatch.setitem(ENGINES, "dies", lambda models, scorer, threads: DeviceLost(models, scorer))
    runner = make_runner(pool, engine="dies")
    comp = compare(runner, "Say hi.", "tiny", ["baseline", "bon"], {"max_new_tokens": 4})
    row = runner.store.get_comparison(comp.id)
    assert row["status"] == "done"
    assert [g["status"] for g in row["generations"]] == ["failed", "failed"]
    assert all("device lost" in g["error"] for g in row["generations"])


def test_interrupted_run_leaves_a_failed_comparison(tiny_env, pool, monkeypatch):
    monkeypatch.setitem(ENGINES, "interrupted", lambda models, scorer, threads: Interrupted(models, scorer))
    runner = make_runner(pool, engine="interrupted")
    with pytest.raises(KeyboardInterrupt):
        compare(runner, "Say hi.", "tiny", ["baseline", "bon"], {"max_new_tokens": 4})
    comps = runner.store.frame("comparisons")
    assert list(comps["status"]) == ["failed"] and comps["error"].iloc[0].startswith("KeyboardInterrupt")
    assert runner.store.count("generations") == 0
    with pytest.raises(VoteError, match=r"this comparison failed .*nothing to vote on"):
        runner.store.record_vote(int(comps["id"].iloc[0]), "u1", "tie")


def test_model_that_will_not_load_leaves_a_failed_comparison(tiny_env, pool, monkeypatch):
    presets = tiny_env / "broken.toml"
    presets.write_text(
        '[broken]\n[broken.strong]\nsource = "/nowhere/no-such-model"\n'
        '[broken.tuned]\nsource = "/nowhere/no-such-model"\n[broken.untuned]\nsource = "/nowhere/no-such-model"\n'
    )
    monkeypatch.setenv("W2S_PRESETS", str(presets))
    runner = make_runner(pool)
    with pytest.raises(Exception, match="no-such-model"):
        compare(runner, "Say hi.", "broken", ["baseline"], {"max_new_tokens": 4})
    comps = runner.store.frame("comparisons")
    assert list(comps["status"]) == ["failed"] and list(comps["preset"]) == ["broken"]
    assert "no-such-model" in comps["error"].iloc[0]
    assert runner.store.count("generations") == 0


def test_deadline_stops_a_long_comparison_and_fails_its_row(runner):
    from w2s_app.runner import DeadlineExceeded

    limits = RequestLimits(seconds=0.01)  # any real search takes longer
    with pytest.raises(DeadlineExceeded, match=r"took longer than 0\.01 s and was stopped"):
        compare(
            runner,
            "Tell a story.",
            "tiny",
            ["w2s"],
            {"max_new_tokens": 64, "l": 4},
            voter_id="u",
            limits=limits,
        )
    (row,) = runner.store.frame("comparisons").itertuples()
    assert row.status == "failed" and "DeadlineExceeded" in row.error


def test_cost_cap_refuses_before_anything_is_written(runner):
    from w2s_app.runner import RequestError

    limits = RequestLimits(max_cost=2048)
    with pytest.raises(RequestError, match="too large"):
        compare(runner, "hi", "tiny", ["bon"], {"n": 64, "max_new_tokens": 4096}, voter_id="u", limits=limits)
    assert runner.store.count("comparisons") == 0
