"""Gold rewards per answer (gold_reward.py, store/rewards.py, leaderboard/gold.py): stored for every
answer of a preset that declares one, off the request path; a failing reward changes nothing else;
people's board is the same frame with and without rewards; the agreement views count right."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import FAKE_PRESETS
from tests.test_voter_influence import arena
from w2s_app.config import Settings
from w2s_app.leaderboard.cache import BoardView, build_board
from w2s_app.leaderboard.report import board_json
from w2s_app.runner import CompareRequest
from w2s_app.tuning.rewards import vader_positive
from w2s_app.wiring import build_services

CALLS: list[str] = []


def broken(prompt: str, text: str) -> float:
    """A reward function that always fails."""
    CALLS.append(text)
    raise RuntimeError("the reward model is down")


def services_with(tmp_path, db_url: str, reward: str):
    presets = tmp_path / "presets.toml"
    presets.write_text(FAKE_PRESETS.replace('prompts = "assets/prompts/instructions.txt"',
                                            f'prompts = "assets/prompts/instructions.txt"\nreward = "{reward}"'))  # fmt: skip
    env = {"W2S_DATA_DIR": str(tmp_path / "data"), "W2S_PRESETS": str(presets), "W2S_PRESET": "fake",
           "W2S_DB_URL": db_url}  # fmt: skip
    return build_services(Settings.from_env(env))


def compare(services) -> int:
    request = CompareRequest("Say something kind", "fake", ["baseline", "bon", "w2s"], {"seed": 3})
    return services.runner.compare(request).id


def test_every_answer_gets_its_reward_after_the_comparison_is_stored(tmp_path, db_url):
    services = services_with(tmp_path, db_url, "vader-positive")
    cid = compare(services)
    assert services.runner.after_stored.wait(30)
    stored = services.store.get_comparison(cid)
    rewards = services.store.reward_frame("fake").set_index("generation_id")
    done = [g for g in stored["generations"] if g["status"] == "done"]
    assert len(done) == 3 and sorted(rewards.index) == sorted(g["id"] for g in done)
    for g in done:
        assert rewards.loc[g["id"], "value"] == pytest.approx(vader_positive(stored["prompt"], g["text"]))
        assert rewards.loc[g["id"], "reward"] == "vader-positive"


def test_a_failing_reward_changes_nothing_else(tmp_path, db_url):
    CALLS.clear()
    services = services_with(tmp_path, db_url, "tests.test_gold_reward:broken")
    cid = compare(services)
    assert services.runner.after_stored.wait(30)
    assert CALLS and services.runner.after_stored.failed == 1  # it ran, and it failed
    stored = services.store.get_comparison(cid)
    assert stored["status"] == "done" and all(g["status"] == "done" for g in stored["generations"])
    assert services.store.reward_frame().empty
    gid = stored["generations"][0]["id"]
    services.store.record_vote(cid, "t:someone", gid)  # the comparison is voted on as any other
    board = build_board(services.store, BoardView(preset="fake"))
    assert board.counts["votes"] == 1 and board.gold == []


def test_peoples_board_is_the_same_frame_with_and_without_rewards(db_url):
    store = arena(db_url, honest_voters=15)
    before = build_board(store, BoardView(preset="offline"))
    votes, gens, _ = store.leaderboard_frames("offline")
    # A reward that always prefers the w2s answer, then bon, then the baseline.
    order = {"w2s W2 K2 L30": 1.0, "bon N4": 0.5, "baseline": 0.0}
    store.record_rewards("ranked", {int(g.id): order[g.label] for g in gens.itertuples()})
    after = build_board(store, BoardView(preset="offline"))
    pd.testing.assert_frame_equal(before.table, after.table)
    pd.testing.assert_frame_equal(before.neighbours, after.neighbours)
    (view,) = after.gold
    assert view.table["entity"].tolist() == ["w2s W2 K2 L30", "bon N4", "baseline"]
    # People agree with the reward exactly when they voted for the w2s answer.
    picked = gens.set_index("id")["label"].reindex(votes["generation_id"]).tolist()
    assert view.with_people.items == len(votes)
    assert view.with_people.agree == sum(label == "w2s W2 K2 L30" for label in picked)
    assert board_json(after)["gold"][0]["with_people"]["agree"] == view.with_people.agree
    store.close()
