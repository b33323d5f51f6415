"""Integration: the real offline GGUF models answer through the CLI (slow; runs in CI)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_all_methods_answer_on_offline_models(tmp_path):
    env_args = [
        sys.executable, "-m", "w2s_app", "generate", "--preset", "offline",
        "--prompt", "Give three tips for staying healthy.",
        "--methods", "baseline,bon,w2s",
        "--max-new-tokens", "24", "--l", "8", "--n", "2", "--json",
    ]  # fmt: skip
    import os

    env = {**os.environ, "W2S_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(env_args, capture_output=True, text=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["preset"] == "offline"
    assert [r["method"] for r in out["results"]] == ["baseline", "bon", "w2s"]
    for r in out["results"]:
        assert r["error"] is None
        assert r["text"].strip(), r
    assert out["results"][2]["score"] is not None
