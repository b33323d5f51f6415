"""Integration: the real offline GGUF models answer through the CLI (slow; runs in CI)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("engine", ["auto", "fast"])  # llama.cpp on a CPU; transformers
def test_all_methods_answer_on_offline_models_and_the_cli_exits_cleanly(tmp_path, engine):
    env_args = [
        sys.executable, "-m", "w2s_app", "generate", "--preset", "offline",
        "--prompt", "Give three tips for staying healthy.",
        "--methods", "baseline,bon,w2s",
        "--max-new-tokens", "12", "--l", "6", "--n", "2", "--json", "--trace",  # two search steps
    ]  # fmt: skip
    import os

    env = {**os.environ, "W2S_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "W2S_ENGINE": engine}
    proc = subprocess.run(env_args, capture_output=True, text=True, timeout=1200, env=env)
    # Exit 0 with the JSON whole: nothing native aborts while the process ends (issue 23).
    assert proc.returncode == 0 and "terminate called" not in proc.stderr, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["preset"] == "offline"
    assert [r["method"] for r in out["results"]] == ["baseline", "bon", "w2s"]
    for r in out["results"]:
        assert r["error"] is None
        assert r["text"].strip(), r
    assert out["results"][2]["score"] is not None and out["results"][2]["trace"]
