"""One composition root for every process: `python app.py` and `serve --with-app` apply the same cost cap,
deadline, limits, recovery and routes (before, the page under `serve --with-app` had none of them)."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest
from gradio_client import Client

from tests.app_server import AppServer
from tests.serve_server import ServeServer
from w2s_app.store import Store

# A tight cap and deadline: the fake models answer small comparisons at once; the slow fake one runs
# past two seconds.
ENV = {"W2S_MAX_COST": "400", "W2S_REQUEST_SECONDS": "1", "W2S_MIN_VOTE_SECONDS": "0"}


def seed_interrupted(data: Path) -> int:
    """A comparison left `running` by a process of this host that is gone."""
    data.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{data / 'w2s.sqlite3'}")
    cid = store.create_comparison("left behind", "fake", {}, "t:x", {})
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "update comparison set runner_id = ? where id = ?", (f"{socket.gethostname()}:999999:dead", cid)
        )
    store.close()
    return cid


def start(kind: str, presets: Path, tmp_path_factory: Any) -> tuple[Any, str, str | None, int]:
    """A process of this kind on a data dir holding one interrupted comparison: (server, page, api, cid)."""
    data = tmp_path_factory.mktemp(kind.replace(" ", "_")) / "data"
    cid = seed_interrupted(data)
    if kind == "app.py":
        server = AppServer(presets, data, W2S_PRESET="fake", **ENV)
        return server, server.url, None, cid
    server = ServeServer(presets, data, "--with-app", preset="fake", **ENV)
    return server, server.base_url.removesuffix("v1"), server.base_url, cid


@pytest.fixture(scope="module")
def serve_with_app(tiny_presets_file, tmp_path_factory):
    """`serve --with-app`: the page and the OpenAI API in one process (app.py serves no API)."""
    started = start("serve --with-app", tiny_presets_file, tmp_path_factory)
    yield started
    started[0].stop()


@pytest.fixture(scope="module", params=["app.py", "serve --with-app"])
def process(request, tiny_presets_file, tmp_path_factory):
    """Each process that serves the page (the second is the one the API test uses too)."""
    if request.param != "app.py":
        yield request.getfixturevalue("serve_with_app")
        return
    started = start("app.py", tiny_presets_file, tmp_path_factory)
    yield started
    started[0].stop()


def test_interrupted_comparisons_are_recovered_at_start(process):
    server, _, _, cid = process
    row = Store(f"sqlite:///{server.db}", migrate_on_start=False).get_comparison(cid)
    assert row["status"] == "failed" and row["error"].startswith("interrupted")


def test_page_refuses_an_over_cost_comparison(process):
    _, page, _, _ = process
    client = Client(page, verbose=False)
    token = client.predict(api_name="/token")
    with pytest.raises(Exception, match=r"too large \(\d+ tokens of work, the limit is 400\)"):
        client.predict("Hi", token, "fake", "baseline,bon,w2s", max_new_tokens=48, api_name="/compare")
    out = client.predict("Hi", token, "fake", "baseline", max_new_tokens=48, api_name="/compare")
    assert out["answers"][0]["status"] == "done"


def test_page_stops_a_comparison_past_the_deadline(process):
    _, page, _, _ = process
    client = Client(page, verbose=False)
    token = client.predict(api_name="/token")
    with pytest.raises(Exception, match=r"took longer than 1 s and was stopped"):
        client.predict("Hi", token, "fake-slow", "baseline", max_new_tokens=200, api_name="/compare")


def test_service_applies_the_same_cap_and_deadline(serve_with_app):
    # Only `serve --with-app` has an OpenAI API: an app.py parameter here could only be skipped.
    _, _, api, _ = serve_with_app
    client = openai.OpenAI(base_url=api, api_key="x", max_retries=0, timeout=60)
    with pytest.raises(openai.BadRequestError, match=r"too large \(\d+ tokens of work, the limit is 400\)"):
        client.completions.create(model="fake/w2s", prompt="Hi", max_tokens=48, extra_body={"w": 4, "k": 2})
    with pytest.raises(openai.APIStatusError, match="took longer than 1 s"):
        client.completions.create(model="fake-slow/baseline", prompt="Hi", max_tokens=200)


def test_json_leaderboard_route_on_both(process):
    _, page, _, _ = process
    with urllib.request.urlopen(page.rstrip("/") + "/w2s/leaderboard.json?preset=fake", timeout=30) as resp:
        body = json.loads(resp.read())
    assert set(body) >= {"counts", "table", "winrate"}
