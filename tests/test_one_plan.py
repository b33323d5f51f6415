"""A comparison is planned once: the door checks the request, and the runner runs that plan. Presets
files are parsed once per version of the file, not on every read."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from w2s_app.arena import compare
from w2s_app.arena.boards import BoardPayloads
from w2s_app.arena.caller import Caller
from w2s_app.config import Settings, presets
from w2s_app.runner import Runner
from w2s_app.serve.app import build_api
from w2s_app.wiring import build_services


@pytest.fixture
def counted(monkeypatch, tmp_path, tiny_presets_file):
    """Services on the scripted presets, with every Runner.plan call counted."""
    services = build_services(
        Settings.from_env({"W2S_PRESETS": str(tiny_presets_file), "W2S_DATA_DIR": str(tmp_path / "data")})
    )
    calls = []
    plan = Runner.plan

    def counting(self, request):
        calls.append(request.prompt)
        return plan(self, request)

    monkeypatch.setattr(Runner, "plan", counting)
    return services, calls


def test_a_page_comparison_is_planned_once_and_reads_no_presets_file_again(counted):
    services, calls = counted
    voter = services.identity.verify(services.identity.issue())
    parses = presets.PARSES[0]
    *_, last = compare.compare_stream(
        services, Caller(voter, None), "Say hi.", "fake", ["baseline", "w2s"], {}
    )
    assert last.done and calls == ["Say hi."]
    assert presets.PARSES[0] == parses  # every read of the presets came from the parsed files


def test_a_service_request_with_three_choices_is_planned_once(counted):
    services, calls = counted
    api = TestClient(build_api(services, BoardPayloads(services)))
    parses = presets.PARSES[0]
    body = {"model": "fake/w2s", "prompt": "Say hi.", "n": 3, "max_tokens": 8}
    answer = api.post("/v1/completions", json=body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["choices"]) == 3 and calls == ["Say hi."]
    assert presets.PARSES[0] == parses


def test_a_presets_file_is_parsed_again_only_when_it_changes(tmp_path):
    from tests.conftest import FAKE_PRESETS

    path = tmp_path / "p.toml"
    path.write_text(FAKE_PRESETS)
    before = presets.PARSES[0]
    first = presets.load_presets([path])
    assert presets.load_presets([path]) == first and presets.PARSES[0] == before + 1
    path.write_text(FAKE_PRESETS.replace("Every method writes the same words.", "Changed."))
    assert presets.load_presets([path])["fake-twins"].description == "Changed."
    assert presets.PARSES[0] == before + 2
