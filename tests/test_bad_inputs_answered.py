"""Inputs an outside test of the public arena found mishandled: each now gets one clear line (or exit 2),
no traceback anywhere, and nothing stored. Against real processes: the app, the CLI, PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client

from tests.app_server import ROOT, AppServer
from tests.conftest import ADMIN_KEY
from tests.db import PostgresServer, free_port, pg_bin
from w2s_app.cli import main

SURROGATE = "key-\ud800"  # a lone surrogate: not valid text in any encoding


@pytest.fixture(scope="module")
def app(tiny_presets_file, tmp_path_factory):
    srv = AppServer(tiny_presets_file, tmp_path_factory.mktemp("inputs") / "data", W2S_PRESET="fake",
                    W2S_MIN_VOTE_SECONDS="0", W2S_ADMIN_KEY=ADMIN_KEY)  # fmt: skip
    yield srv
    srv.stop()


def raw_call(app: AppServer, api: str, data: list) -> tuple[str, str]:
    """One call through Gradio's plain HTTP API: (event, data) of its last server-sent event."""
    body = json.dumps({"data": data}).encode()
    req = urllib.request.Request(
        f"{app.url}gradio_api/call/{api}", body, {"Content-Type": "application/json"}
    )
    event_id = json.load(urllib.request.urlopen(req, timeout=30))["event_id"]
    text = urllib.request.urlopen(f"{app.url}gradio_api/call/{api}/{event_id}", timeout=120).read().decode()
    lines = [line for line in text.splitlines() if line.startswith(("event:", "data:"))]
    return lines[-2].split(":", 1)[1].strip(), lines[-1].split(":", 1)[1].strip()


@pytest.mark.parametrize(
    ("api", "data", "message"),
    [
        ("history", [1, "", "", SURROGATE], "wrong admin key"),
        ("export", ["votes", "csv", "", SURROGATE], "wrong admin key"),
        ("voters", [SURROGATE], "needs the admin key"),
        ("export", ["secrets", "csv", "", ADMIN_KEY], "export what: comparisons, generations, votes"),
        ("export", ["votes", "xlsx", "", ADMIN_KEY], "export format: csv, jsonl or parquet"),
        ("export", [{"a": 1}, "csv", "", ADMIN_KEY], "export what"),
    ],
)
def test_bad_admin_keys_and_export_values_are_one_clear_line(app, api, data, message):
    event, said = raw_call(app, api, data)
    assert event == "error" and message in said, said


def test_a_vote_on_an_interrupted_comparison_says_it_failed(app):
    client = Client(app.url, verbose=False)
    token = client.predict(api_name="/token")
    out = client.predict("Hi", token, "fake", "baseline,bon", api_name="/compare")
    with sqlite3.connect(app.db) as db:  # as start-up recovery leaves a comparison a dead process ran
        db.execute("update comparison set status='failed', error='interrupted' where public_id=?",
                   (out["comparison_id"],))  # fmt: skip
    with pytest.raises(Exception, match="this comparison failed"):
        client.predict(out["comparison_id"], "A", token, api_name="/vote")


@pytest.mark.parametrize(
    ("api", "data", "message"),
    [
        ("compare", ["Hi", "", "fake", "baseline", 2, 2, 8, 4, 32, 1.0, 1.0, 7],  # the 12-value /compare
         "/compare takes 14 values: prompt, token, preset, methods, w, k, l, n, max_new_tokens, temperature, "
         "top_p, seed, beta, noise; got 12"),
        ("vote", ["AAAAAAAAAAAAAAAA", "A"], "/vote takes 3 values: comparison_id, choice, token; got 2"),
        ("token", ["extra"], "/token takes no values; got 1"),
        ("voters", [], "/voters takes 1 value: admin_key; got 0"),
    ],
    ids=["compare-12", "vote-2", "token-1", "voters-0"],
)  # fmt: skip
def test_a_wrong_number_of_values_names_the_endpoint_and_its_parameters(app, api, data, message):
    """Was {"error": null} and a traceback in the log (too few), or the extra values dropped (too many)."""
    event, said = raw_call(app, api, data)
    assert event == "error" and json.loads(said)["error"] == message, said
    assert f"refused a call: {message}" in app.log.read_text().splitlines()


def test_a_client_sending_extra_values_gets_the_error_text(app):
    client = Client(app.url, verbose=False)
    with pytest.raises(Exception, match=r"^/vote takes 3 values: comparison_id, choice, token; got 4$"):
        client.predict("AAAAAAAAAAAAAAAA", "A", "token", "seconds", api_name="/vote")


@pytest.mark.parametrize(
    "blank", ["\u200b", "\ufeff\u2060", " \u200b\u00a0\u2028\u200d\n", "\u00ad\u3000\x85"]
)
def test_a_prompt_of_invisible_characters_is_empty(blank):
    """Zero-width spaces (Cf), separators (Z*) and controls (Cc) show nothing, like spaces and NBSP."""
    from w2s_app.runner import RequestError, clean_prompt

    with pytest.raises(RequestError, match="the prompt is empty"):
        clean_prompt(blank)
    assert clean_prompt(f"{blank}hi{blank}") == f"{blank}hi{blank}".strip()


def test_no_refusal_left_a_traceback_in_the_log(app):
    log = app.log.read_text()
    assert "Traceback" not in log and "UnicodeEncodeError" not in log, log[-3000:]


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def test_batch_limit_below_one_is_refused(tiny_env, capsys):
    prompts = tiny_env / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    code, err = run_cli(capsys, "batch", "--preset", "fake", "--input", str(prompts), "--output",
                        str(tiny_env / "o.jsonl"), "--limit", "-3")  # fmt: skip
    assert code == 2 and err == "error: --limit must be at least 1, got -3\n"
    assert not (tiny_env / "o.jsonl").exists()


def test_leaderboard_of_an_unknown_preset_is_refused(tiny_env, capsys):
    code, err = run_cli(capsys, "leaderboard", "--preset", "no-such")
    assert code == 2 and err.startswith("error: unknown preset 'no-such'") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"W2S_TRUSTED_PROXIES": "not-an-ip,999.1.1.1/99,10.0.0.0/8"},
         "W2S_TRUSTED_PROXIES takes IP addresses, networks (e.g. 10.0.0.0/8) or 'private', comma-separated; "
         "not 'not-an-ip', '999.1.1.1/99'"),
        ({"W2S_ADMIN_KEY": "hunter2"}, "W2S_ADMIN_KEY is too short (7 characters): use 16 or more"),
        ({"W2S_ADMIN_KEY": "   "}, "W2S_ADMIN_KEY is set but blank"),
        ({"W2S_SECRET": ""}, "W2S_SECRET is set but blank"),
        ({"W2S_SECRET": " \t "}, "W2S_SECRET is set but blank"),
        ({"W2S_SECRET": " short-secret "}, "W2S_SECRET is too short (12 characters)"),
        ({"GRADIO_SERVER_PORT": "65536"}, "GRADIO_SERVER_PORT must be a whole number from 1 to 65535, got '65536'"),
        ({"GRADIO_SERVER_PORT": "0"}, "GRADIO_SERVER_PORT must be a whole number from 1 to 65535, got '0'"),
        ({"GRADIO_SERVER_PORT": "7_860"}, "GRADIO_SERVER_PORT must be a whole number"),
    ],
    ids=["proxies", "admin-short", "admin-spaces", "secret-empty", "secret-spaces", "secret-short",
         "port-65536", "port-0", "port-underscore"],
)  # fmt: skip
def test_a_bad_deployment_variable_stops_the_command_in_one_line(tiny_env, monkeypatch, capsys, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, err = run_cli(capsys, "leaderboard")
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {message}"), err
    assert "hunter2" not in err and "short-secret" not in err  # a key is never echoed


def test_good_deployment_variables_are_read_and_blank_keys_are_unset():
    from w2s_app.config import Settings

    settings = Settings.from_env({"W2S_TRUSTED_PROXIES": "private, 10.0.0.0/8,192.168.1.7,::1,fd00::/8",
                                  "W2S_ADMIN_KEY": "", "GRADIO_SERVER_PORT": "8080"})  # fmt: skip
    assert settings.trusted_proxies == ("private", "10.0.0.0/8", "192.168.1.7", "::1", "fd00::/8")
    assert settings.admin_key is None and settings.secret is None and settings.server_port == 8080
    assert Settings.from_env({}).server_port == 7860


def closed_postgres_url() -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"


@pytest.mark.parametrize("command", [["generate", "--preset", "fake", "--prompt", "hi"], ["leaderboard"],
                                     ["export", "--what", "votes", "--format", "csv", "--out", "x.csv"]])  # fmt: skip
@pytest.mark.parametrize(
    "env",
    [{"W2S_DATA_DIR": "FILE"}, {"W2S_DATA_DIR": "/proc/x"}, {"W2S_DB_URL": "notaurl://x", "W2S_SECRET": "s" * 32},
     {"W2S_DB_URL": "CLOSED", "W2S_SECRET": "s" * 32}],
    ids=["data-dir-a-file", "data-dir-in-proc", "not-a-url", "closed-postgres-port"],
)  # fmt: skip
def test_cli_with_an_unusable_data_dir_or_database_is_one_line(tiny_env, command, env, monkeypatch, capsys):
    # In this process (an exception escaping main would fail the test); the next test runs one case as
    # the real command.
    from w2s_app.cli import main

    values = dict(env)
    if values.get("W2S_DATA_DIR") == "FILE":
        (tiny_env / "a-file").write_text("x")
        values["W2S_DATA_DIR"] = str(tiny_env / "a-file")
    if values.get("W2S_DB_URL") == "CLOSED":
        values["W2S_DB_URL"] = closed_postgres_url()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tiny_env)
    code = main(command)
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert err.count("\n") == 1 and err.startswith("error: cannot start:"), err[-2000:]


def test_the_command_with_an_unreachable_database_prints_one_line_and_exits_2(tiny_env):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "W2S_DB_URL": closed_postgres_url(), "W2S_SECRET": "s" * 32}
    proc = subprocess.run([sys.executable, "-m", "w2s_app", "generate", "--preset", "fake", "--prompt", "hi"],
                          cwd=tiny_env, capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: cannot start:"), proc.stderr[
        -2000:
    ]


def test_app_with_a_malformed_presets_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[oops\n")
    env = {
        **os.environ,
        "W2S_DATA_DIR": str(tmp_path / "data"),
        "W2S_PRESETS": str(bad),
        "GRADIO_SERVER_PORT": str(free_port()),
    }
    proc = subprocess.run([sys.executable, str(ROOT / "app.py")], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("w2s-arena: cannot start: presets file") and "bad.toml" in lines[0]


@pytest.mark.skipif(pg_bin() is None and not os.environ.get("CI"), reason="PostgreSQL not installed")
def test_a_database_that_goes_down_is_named_not_a_generic_error(tiny_presets_file, tmp_path):
    """Its own PostgreSQL server, stopped while the app runs: votes, leaderboard and history say so."""
    pg = PostgresServer()
    app, stopped = None, False
    try:
        app = AppServer(tiny_presets_file, tmp_path / "data", W2S_DB_URL=pg.new_database(), W2S_PRESET="fake",
                        W2S_SECRET="pg-down-secret-0123456789abcdef", W2S_MIN_VOTE_SECONDS="0",
                        W2S_RATE_LIMIT="0", W2S_ADDRESS_LIMIT="0")  # fmt: skip
        client = Client(app.url, verbose=False)
        token = client.predict(api_name="/token")
        out = client.predict("Hi", token, "fake", "baseline,bon", api_name="/compare")
        pg.stop()
        stopped = True
        for call in (
            lambda: client.predict(out["comparison_id"], "A", token, api_name="/vote"),
            lambda: client.predict("fake", False, 0, False, "judge:nobody", api_name="/leaderboard"),
            lambda: client.predict(1, "", token, "", api_name="/history"),
        ):
            with pytest.raises(Exception, match="the database is not answering"):
                call()
        assert "Traceback" not in app.log.read_text()
    finally:
        if app is not None:
            app.stop()
        if not stopped:
            pg.stop()


def test_an_export_that_cannot_be_written_says_so(tiny_env, capsys):
    (Path(tiny_env) / "a-file").write_text("x")
    code, err = run_cli(capsys, "export", "--what", "votes", "--format", "csv", "--out",
                        str(Path(tiny_env) / "a-file" / "x.csv"))  # fmt: skip
    assert code == 2 and err.startswith("error: cannot write") and err.count("\n") == 1


def test_forwarded_headers_from_an_untrusted_peer_change_nothing(app):
    """30 new tokens asked from loopback, each with a new X-Forwarded-For: the address limit (10 a
    minute) still counts them as one address (W2S_TRUSTED_PROXIES is unset)."""
    got = 0
    for i in range(30):
        body = json.dumps({"data": []}).encode()
        headers = {"Content-Type": "application/json", "X-Forwarded-For": f"203.0.113.{i + 1}"}
        req = urllib.request.Request(f"{app.url}gradio_api/call/token", body, headers)
        event_id = json.load(urllib.request.urlopen(req, timeout=30))["event_id"]
        stream = urllib.request.Request(f"{app.url}gradio_api/call/token/{event_id}", headers=headers)
        text = urllib.request.urlopen(stream, timeout=60).read().decode()
        got += "event: complete" in text
    assert got <= 10
