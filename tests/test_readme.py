"""Every command in the code blocks of the README and the docs/ pages that can run offline does run
(with the tiny presets).

Lines ending in a `# needs: ...` comment say what they need that a test machine lacks (a Docker
engine, a GPU, a network, the whole test suite); they are listed, not run. `python app.py` is
started, checked to serve the page, and stopped. Python blocks run against a live app. A line that
appears on several pages runs once. Links between the pages point at files and headings that exist.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.app_server import AppServer
from tests.db import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = (README, *sorted((ROOT / "docs").glob("*.md")))  # the README, then every docs page
pytestmark = pytest.mark.slow  # prepare loads the real offline models


def blocks(lang: str, pages: tuple[Path, ...] = PAGES) -> list[str]:
    """Bodies of the pages' fenced code blocks in one language."""
    return [
        body
        for page in pages
        for body in re.findall(rf"```{lang}\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    ]


def shell_commands(pages: tuple[Path, ...] = PAGES) -> list[str]:
    """Each command line of the bash blocks (continuations joined, comments dropped), once each."""
    out = []
    for body in blocks("bash", pages):
        joined = body.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return list(dict.fromkeys(out))


@pytest.fixture
def workdir(tmp_path, tiny_presets_file):
    (tmp_path / "prompts.jsonl").write_text(json.dumps({"instruction": "Say hi."}) + "\n")
    (tmp_path / "alpaca_eval.json").write_text(json.dumps([{"instruction": "Say hi.", "dataset": "demo"}]))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "W2S_PRESETS": str(tiny_presets_file),
        "W2S_PRESET": "tiny",
        "W2S_DATA_DIR": str(tmp_path / "data"),
        "HF_HUB_OFFLINE": "1",
    }
    return tmp_path, env


def test_readme_has_the_two_commands():
    cmds = shell_commands((README,))
    assert any(c.startswith("bash scripts/install.sh && python app.py") for c in cmds)
    assert any(c.startswith("bash scripts/install.sh --dev && python -m pytest") for c in cmds)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/install.sh --dev && python -m pytest" in ci


def runnable_commands() -> list[str]:
    """The bash lines a test machine can run (`python app.py` has its own test)."""
    return [c for c in shell_commands() if "python app.py" not in c and "# needs:" not in c]


def test_enough_commands_run_and_the_rest_say_what_they_need():
    listed = [c for c in shell_commands() if "# needs:" in c]
    assert len(runnable_commands()) >= 12  # as many as when they were all in the README
    assert all(c.split("# needs:")[1].strip() for c in listed)


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings (lower case, punctuation dropped, spaces to hyphens)."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    titles = re.findall(r"^#+ +(.+?) *$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", t.lower()).replace(" ", "-") for t in titles}


def test_the_pages_link_to_what_exists():
    """Every relative link of the README and the docs pages names a file, and a heading that exists;
    the README stays a getting-started page that links every docs page."""
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: {target}"
            if anchor:
                assert anchor in heading_anchors(linked), f"{page.name}: {target}"
    readme = README.read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    for doc in PAGES[1:]:
        assert f"](docs/{doc.name})" in readme, f"the README does not link docs/{doc.name}"


CLI = "python -m w2s_app "


def in_process(cmd: str) -> bool:
    """A plain `python -m w2s_app ...` line (no shell syntax): main() runs it in this process."""
    return cmd.startswith(CLI) and not set(cmd) & set("|&;<>$`")


@pytest.mark.parametrize("cmd", runnable_commands(), ids=lambda c: " ".join(c.split()[:6])[:60])
def test_shell_command_runs(workdir, cmd, monkeypatch, capsys):
    tmp, env = workdir
    # Offline models stay offline; tiny presets keep it short. Each command gets a fresh data dir,
    # so the commands run in any order and on any test worker.
    cmd = cmd.replace("--preset offline", "--preset tiny")
    if in_process(cmd):
        # The CLI's own entry point, as `python -m w2s_app` calls it, with the command's environment
        # and folder: a new process would add ~5 s of imports per command and test nothing more
        # (test_offline_models and the judge and remote-guide tests run the CLI as a process).
        from w2s_app.cli import main

        for name in ("W2S_PRESETS", "W2S_PRESET", "W2S_DATA_DIR", "HF_HUB_OFFLINE"):
            monkeypatch.setenv(name, env[name])
        monkeypatch.chdir(tmp)
        code = main(shlex.split(cmd)[len(CLI.split()) :])
        out = capsys.readouterr()
        assert code == 0, f"{cmd}\n{out.out[-1500:]}\n{out.err[-3000:]}"
        return
    proc = subprocess.run(cmd, shell=True, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"


def test_most_readme_commands_are_plain_cli_lines():
    """The in-process path above is not a way around the shell: it takes only plain CLI lines."""
    plain = [c for c in runnable_commands() if in_process(c)]
    assert len(plain) >= 10 and not in_process("python -m w2s_app export > x.csv")


def test_app_command_serves(workdir):
    tmp, env = workdir
    cmd = next(c for c in shell_commands((README,)) if "python app.py" in c)
    port = free_port()
    app_cmd = shlex.split(cmd.split("&&")[-1].split("#")[0])
    assert app_cmd == ["python", "app.py"]
    env = {**env, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=tmp, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(240):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("python app.py did not serve in 120 s")
        assert "w2s-arena" in page
    finally:
        proc.terminate()
        proc.wait(20)


def test_python_blocks_run(tiny_presets_file, tmp_path):
    server = AppServer(tiny_presets_file, tmp_path / "data", W2S_MIN_VOTE_SECONDS="0")
    try:
        for body in blocks("python"):
            code = body.replace("http://127.0.0.1:7860/", server.url).replace('"offline"', '"tiny"')
            proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                                  timeout=300)  # fmt: skip
            assert proc.returncode == 0, f"{code}\n{proc.stderr[-3000:]}"
    finally:
        server.stop()
