"""Rough edges of issue 15 outside the web API: CLI input errors and app start-up and recovery.

Each gives one clear line and exit code 2, and leaves the database as it was.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.app_server import ROOT, AppServer
from w2s_app.cli import main


def rows(data_dir: Path) -> tuple:
    """Counts of the arena's tables (none when there is no database yet)."""
    db = data_dir / "w2s.sqlite3"
    if not db.exists():
        return (0, 0, 0)
    with sqlite3.connect(db) as con:
        return tuple(
            con.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ("comparison", "generation", "vote")
        )


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    return code, err


@pytest.fixture
def prompts(tiny_env) -> Path:
    path = tiny_env / "prompts.jsonl"
    path.write_text('{"prompt": "hi"}\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)), "is not UTF-8 text"),
        ('{"prompt": "hi"}\n'.encode("utf-16"), "is not UTF-8 text"),
    ],
    ids=["binary", "utf-16"],
)
def test_batch_input_that_is_not_text(tiny_env, capsys, content, message):
    src = tiny_env / "in.jsonl"
    src.write_bytes(content)
    code, err = run_cli(
        capsys, "batch", "--preset", "tiny", "--input", str(src), "--output", str(tiny_env / "o.jsonl")
    )
    assert code == 2 and message in err and "Traceback" not in err
    assert rows(tiny_env / "data") == (0, 0, 0)


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        ("dir", "is not a file"),
        ("not json at all\n", "not a batch result"),
        ('{"prompt": "hi"}\n', "not a batch result"),
        (b"\xff\xfe\x00garbage\n", "not a batch output"),
    ],
)
def test_batch_output_that_is_not_a_batch_output(tiny_env, prompts, capsys, existing, message):
    out = tiny_env / "out.jsonl"
    if existing == "dir":
        out.mkdir()
    elif isinstance(existing, bytes):
        out.write_bytes(existing)
    else:
        out.write_text(existing, encoding="utf-8")
    code, err = run_cli(capsys, "batch", "--preset", "tiny", "--input", str(prompts), "--output", str(out))
    assert code == 2 and message in err, err
    assert rows(tiny_env / "data") == (0, 0, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", "bad \udcff byte"], "invalid byte"),
        (
            ["--prompt", "hi", "--methods", "baseline", "--n", "100000"],
            "n must be a whole number between 1 and 64",
        ),
        (["--prompt", "hi", "--methods", "baseline", "--l", "0"], "l must be a whole number between"),
        (["--prompt", "hi", "--engine", "bogus"], "unknown engine 'bogus'"),
    ],
)
def test_generate_input_errors_leave_no_rows(tiny_env, capsys, args, message):
    code, err = run_cli(capsys, "generate", "--preset", "tiny", *args)
    assert code == 2 and message in err, err
    assert rows(tiny_env / "data") == (0, 0, 0)


def test_missing_api_model_leaves_no_rows(tiny_env, capsys, monkeypatch):
    monkeypatch.delenv("W2S_API_MODEL", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    code, err = run_cli(capsys, "generate", "--preset", "api", "--prompt", "hi", "--methods", "baseline")
    assert code == 2 and "model" in err, err
    assert rows(tiny_env / "data") == (0, 0, 0)


def test_unreachable_api_server_leaves_no_rows(tiny_env, capsys, monkeypatch):
    from tests.db import free_port

    monkeypatch.setenv("W2S_API_MODEL", "any")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    code, err = run_cli(capsys, "generate", "--preset", "api", "--prompt", "hi", "--methods", "baseline")
    assert code == 2 and "cannot reach the API server" in err, err
    assert rows(tiny_env / "data") == (0, 0, 0)


def test_bad_number_prints_one_line_not_the_usage(tiny_env):
    proc = subprocess.run(
        [sys.executable, "-m", "w2s_app", "generate", "--prompt", "hi", "--w", "1e9"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().count("\n") == 0
        and "w must be a whole number between 1 and 16, got 1e9" in proc.stderr
    )


def test_cli_data_dir_that_is_a_file(tiny_env, capsys, monkeypatch):
    bad = tiny_env / "a-file"
    bad.write_text("x")
    monkeypatch.setenv("W2S_DATA_DIR", str(bad))
    code, err = run_cli(capsys, "generate", "--preset", "tiny", "--prompt", "hi")
    assert code == 2 and "is a file, not a folder" in err


def start_app(data_dir: Path, tiny_presets_file: Path, **extra: str) -> subprocess.CompletedProcess:
    from tests.db import free_port

    env = {**os.environ, "W2S_DATA_DIR": str(data_dir), "W2S_PRESETS": str(tiny_presets_file),
           "W2S_PRESET": "tiny", "GRADIO_SERVER_PORT": str(free_port()), **extra}  # fmt: skip
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py")], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("case", ["file", "under-a-file"])
def test_app_start_up_with_a_bad_data_dir_is_one_line_and_exit_2(tmp_path, tiny_presets_file, case):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    data_dir = blocker if case == "file" else blocker / "data"
    proc = start_app(data_dir, tiny_presets_file)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("w2s-arena: cannot start:"), proc.stderr[-2000:]


def test_app_with_a_port_that_is_not_a_number_is_one_line_and_exit_2(tmp_path, tiny_presets_file):
    """GRADIO_SERVER_PORT=abc was a 33-line traceback and exit 1."""
    proc = start_app(tmp_path / "data", tiny_presets_file, GRADIO_SERVER_PORT="abc")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0] == (
        "w2s-arena: cannot start: GRADIO_SERVER_PORT must be a whole number from 1 to 65535, got 'abc'"
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_comparison_left_running_by_a_dead_app_is_failed_at_start_up(tiny_presets_file, tmp_path, sig):
    from gradio_client import Client

    data_dir = tmp_path / "data"
    env = {"W2S_MAX_COST": "0", "W2S_REQUEST_SECONDS": "0"}
    app = AppServer(tiny_presets_file, data_dir, **env)
    try:
        client = Client(app.url, verbose=False)
        token = client.predict(api_name="/token")
        # Scripted words at 20 ms a step (no model): the comparison runs ~40 s unless stopped.
        client.submit(
            "Tell a very long story.", token, "fake-slow", "bon,w2s", 4, 4, 4, 16, 2048, api_name="/compare"
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            with sqlite3.connect(app.db) as con:
                if con.execute("select count(*) from comparison where status='running'").fetchone()[0]:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the comparison never started")
        os.kill(app.proc.pid, sig)
        app.proc.wait(30)
    finally:
        app.stop()
    with sqlite3.connect(app.db) as con:
        assert con.execute("select status from comparison").fetchall() == [("running",)]
    again = AppServer(tiny_presets_file, data_dir, **env)
    again.stop()
    with sqlite3.connect(app.db) as con:
        status, error = con.execute("select status, error from comparison").fetchone()
    assert status == "failed" and "interrupted" in error
