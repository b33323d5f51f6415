"""docs/configuration.md names every deployment variable `Settings` declares, and no `W2S_*` variable
that nothing reads. (The tables are written by hand; the variables below are still read outside
`Settings` and are listed here until they move into it.)"""

from __future__ import annotations

import re
from pathlib import Path

from w2s_app.config.settings import env_reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
# Read by the backends themselves (backends/openai_api.py, llamacpp.py, llama_lib.py, cache_dir.py).
READ_OUTSIDE_SETTINGS = {
    "W2S_API_BACKOFF", "W2S_API_MAX_SECONDS", "W2S_API_PARALLEL", "W2S_API_RETRIES", "W2S_API_TIMEOUT",
    "W2S_CACHE_DIR", "W2S_THREADS",
}  # fmt: skip


def test_every_declared_variable_has_a_row_and_every_row_a_reader():
    text = DOC.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", text, re.M)) | set(
        re.findall(r"`([A-Z][A-Z0-9_]+)`", text)
    )
    declared = {variable for variable, _, _ in env_reference()}
    assert sorted(declared - rows) == [], "declared in Settings, missing from docs/configuration.md"
    named = set(re.findall(r"`(W2S_[A-Z0-9_]+)`", text))
    assert sorted(named - declared - READ_OUTSIDE_SETTINGS) == [], "in the doc, read by nothing"
    source = "\n".join(p.read_text() for p in (DOC.parents[1] / "w2s_app").rglob("*.py"))
    assert all(v in source for v in READ_OUTSIDE_SETTINGS), "a variable listed here is no longer read"
