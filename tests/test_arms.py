"""Arms: a method with the settings it fixes, named as the board names it ('bon N16', 'w2s W4 K4 L5').
Declared in presets, checked at start, and taken by the CLI (--methods, --arms), the page's compare
action and the service (a model per arm), so votes land on the same board entity everywhere."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import FAKE_PRESETS
from w2s_app.arena import compare
from w2s_app.arena.caller import Caller
from w2s_app.cli import main
from w2s_app.config import ConfigError, Settings
from w2s_app.leaderboard.cache import BoardView
from w2s_app.options import OptionError
from w2s_app.runner import build_methods
from w2s_app.search.methods import method_label, parse_arm
from w2s_app.wiring import build_services

ARMS = ["baseline", "bon N8", "w2s W2 K2 L4", "w2s W3 K2 L6"]


def test_an_arm_reads_back_from_its_board_label_or_from_names():
    assert parse_arm("bon N16") == ("bon", {"n": 16})
    assert parse_arm("w2s w=4 k=4 l=5") == parse_arm("w2s W4 K4 L5") == ("w2s", {"w": 4, "k": 4, "l": 5})
    assert parse_arm("w2s") == ("w2s", {})
    for arm in ARMS:
        name, _ = parse_arm(arm)
        assert method_label(name, build_methods([arm], {"n": 4, "w": 2, "k": 2, "l": 30})[0][1]) == arm
    with pytest.raises(OptionError, match="not a setting of bon"):
        parse_arm("bon Q3")
    with pytest.raises(OptionError, match="w must be a whole number between 1 and 16"):
        parse_arm("w2s W99")
    with pytest.raises(OptionError, match="listed twice"):
        build_methods(["w2s W2 K2 L5", "w2s w=2 k=2 l=5"], {})


def test_the_sentiment_presets_declare_the_papers_setting_and_a_matching_best_of_n():
    for name in ("sentiment-positive", "sentiment-negative"):
        arms = Settings.from_env({}).preset(name).arms
        assert {"baseline", "w2s W2 K2 L5", "w2s W4 K4 L5", "bon N16"} <= set(arms), arms


def presets_with_arms(tmp_path, arms: list[str]):
    path = tmp_path / "presets.toml"
    path.write_text(FAKE_PRESETS.replace("[fake.strong]", f"arms = {json.dumps(arms)}\n[fake.strong]"))
    return path


def test_a_bad_declared_arm_stops_start_up_naming_the_preset(tmp_path):
    env = {"W2S_DATA_DIR": str(tmp_path / "d"), "W2S_PRESETS": str(presets_with_arms(tmp_path, ["bon Q3"]))}
    with pytest.raises(ConfigError, match=r"preset 'fake': arms: .*not a setting of bon"):
        build_services(Settings.from_env(env))


def test_generate_runs_the_presets_arms_and_labels_them_as_declared(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("W2S_PRESETS", str(presets_with_arms(tmp_path, ARMS)))
    monkeypatch.setenv("W2S_DATA_DIR", str(tmp_path / "data"))
    assert main(["generate", "--preset", "fake", "--arms", "--prompt", "Hi", "--json", "--seed", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in out["results"]] == ARMS
    assert (
        main(["generate", "--preset", "fake", "--methods", "bon N8,w2s W3 K2 L6", "--prompt", "Hi", "--json"])
        == 0
    )
    assert [r["label"] for r in json.loads(capsys.readouterr().out)["results"]] == ["bon N8", "w2s W3 K2 L6"]


def test_the_page_action_and_the_service_take_arms(tmp_path, serve_server):
    presets = presets_with_arms(tmp_path, ARMS)
    services = build_services(
        Settings.from_env({"W2S_DATA_DIR": str(tmp_path / "d"), "W2S_PRESETS": str(presets)})
    )
    who = Caller(services.identity.verify(services.identity.issue()), "127.0.0.1")
    *_, last = compare.compare_stream(services, who, "Hi", "fake", ["bon N8", "w2s W3 K2 L6"], {})
    stored = services.store.get_comparison(last.comparison["id"])
    assert sorted(g["label"] for g in stored["generations"]) == ["bon N8", "w2s W3 K2 L6"]
    client = openai.OpenAI(base_url=serve_server.base_url, api_key="x", max_retries=0, timeout=120)
    reply = client.completions.create(model="fake/bon N8", prompt="Hi", max_tokens=8)
    assert reply.choices[0].text and reply.model == "fake/bon N8"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="fake/bon Q3", prompt="Hi", max_tokens=8)


def test_the_board_marks_the_declared_arms_and_the_custom_ones(tmp_path, db_url):
    presets = presets_with_arms(tmp_path, ["baseline", "bon N8"])
    env = {"W2S_DATA_DIR": str(tmp_path / "d"), "W2S_PRESETS": str(presets), "W2S_DB_URL": db_url}
    services = build_services(Settings.from_env(env))
    who = Caller(services.identity.verify(services.identity.issue()), "127.0.0.1")
    # The preset's two arms and a configuration of a rater's own (as the page's sliders make one).
    *_, last = compare.compare_stream(services, who, "Hi", "fake", ["baseline", "bon N8", "w2s"], {"l": 6})
    stored = services.store.get_comparison(last.comparison["id"])
    services.store.record_vote(stored["id"], who.voter_id, stored["generations"][0]["id"])
    board = services.board.get(BoardView(preset="fake"))
    kinds = dict(zip(board.table["entity"], board.table["arm"], strict=True))
    assert kinds == {"baseline": "declared", "bon N8": "declared", "w2s W2 K2 L6": "custom"}
    everything = services.board.get(BoardView(preset=""))  # the board of every preset marks nothing
    assert "arm" not in everything.table
