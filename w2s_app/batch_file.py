"""The batch command's files: prompts in (JSONL, or a JSON list as AlpacaEval ships them), results out
(one line per prompt, or per method in AlpacaEval's form), and which prompts a resumed run has done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ALPACA_EVAL = "alpaca_eval"


class BatchFileError(ValueError):
    """An input or output file the batch command cannot use; the message names it and what to do."""


def read_prompts(path: Path) -> list[dict[str, Any]]:
    """Prompts from JSONL (or a JSON list, as AlpacaEval ships them)."""
    if not path.is_file():
        raise BatchFileError(f"input file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchFileError(
            f"input file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from exc
    try:
        rows = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
    except json.JSONDecodeError as exc:
        raise BatchFileError(f"input file {path}: not valid JSON lines: {exc}") from exc
    out = []
    for i, row in enumerate(rows):
        prompt = row.get("instruction") or row.get("prompt") if isinstance(row, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            raise BatchFileError(
                f"input file {path}, record {i + 1}: needs a non-empty 'instruction' or 'prompt'"
            )
        out.append({**row, "index": i, "prompt": prompt})
    return out


def done_indices(path: Path, fmt: str) -> set[int]:
    """Indices already written to the output; a torn last line (killed mid-write) is dropped."""
    if not path.exists():
        return set()
    if not path.is_file():
        raise BatchFileError(f"output {path} is not a file; give a file name for --output")
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
        path.write_bytes(raw)
    done = set()
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise BatchFileError(
            f"output file {path} is not a batch output (not UTF-8); choose another --output"
        ) from exc
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = json.loads(line)
                index = int(row["index"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise BatchFileError(
                    f"output file {path}, line {number}: not a batch result (JSON with an 'index'); "
                    "choose another --output"
                ) from exc
            # One output file holds one format: resuming across formats would mix them.
            if ("generator" in row) != (fmt == ALPACA_EVAL):
                raise BatchFileError(f"{path} holds results of another --format; choose another --output")
            done.add(index)
    return done


def write_alpaca_json(path: Path) -> None:
    """Also write one JSON list per generator, the form `alpaca_eval --model_outputs` reads."""
    by_gen: dict[str, list[dict[str, Any]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_gen.setdefault(row["generator"], []).append(
            {k: row[k] for k in ("instruction", "output", "generator", "dataset")}
        )
    for gen, rows in by_gen.items():
        safe = gen.replace("/", "_").replace(" ", "_")
        path.with_name(f"{path.stem}.{safe}.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False))


def result_lines(
    fmt: str, item: dict[str, Any], comp: Any, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What one prompt's comparison writes: a line per method (AlpacaEval), else one line with `rows`."""
    if fmt == ALPACA_EVAL:
        return [
            {
                "index": item["index"],
                "instruction": item["prompt"],
                "output": r.text.strip(),
                "generator": f"{comp.preset}/{r.label}",
                "dataset": item.get("dataset", ""),
                "error": r.error,
            }
            for r in comp.results
        ]
    return [{"index": item["index"], "prompt": item["prompt"], "preset": comp.preset,
             "sampling": vars(comp.sampling), "results": rows}]  # fmt: skip
