"""W2S_DTYPE=auto on a CPU: the faster of float32 and int8, measured once per machine and cached."""

from __future__ import annotations

import json

from w2s_app.backends import precision
from w2s_app.backends.precision import MARGIN, choose, cpu_precision, measure


def test_int8_is_chosen_only_where_it_is_clearly_faster():
    # The AVX2-only EPYC of issue 22: int8 162 ms against float32 123 ms per token.
    assert choose({"float32": 123.0, "int8": 162.0}) == "float32"
    assert choose({"float32": 100.0, "int8": 100.0 / MARGIN + 1}) == "float32"  # inside the margin
    assert choose({"float32": 100.0, "int8": 30.0}) == "int8"


def test_the_measurement_is_taken_once_and_read_back(tmp_path, monkeypatch):
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return measure(*args, **kwargs)

    monkeypatch.setattr(precision, "measure", counted)
    first = cpu_precision(tmp_path)
    (saved,) = (tmp_path / "precision").glob("*.json")
    record = json.loads(saved.read_text())
    assert first == record["choice"] == choose(record["ms"]) and record["ms"]["float32"] > 0
    assert record["cpu"] and record["torch"]
    # The cached choice is what later processes use, without measuring again.
    other = "float32" if first == "int8" else "int8"
    saved.write_text(json.dumps({**record, "choice": other}))
    assert cpu_precision(tmp_path) == other
    assert len(calls) == 1


def test_an_unwritable_cache_still_answers(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cpu_precision(blocker) in ("float32", "int8")
