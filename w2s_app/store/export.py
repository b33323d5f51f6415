"""Write a DataFrame as CSV, JSONL or Parquet, and read it back."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

FORMATS = ("csv", "jsonl", "parquet")
JSON_COLUMNS = ("settings", "models", "params", "trace")


def _flatten(df: pd.DataFrame) -> pd.DataFrame:
    """Nested JSON columns as JSON text, so every format holds the same values."""
    out = df.copy()
    for col in JSON_COLUMNS:
        if col in out:
            out[col] = [json.dumps(v, sort_keys=True) for v in out[col]]
    return out


def write_frame(df: pd.DataFrame, fmt: str, path: Path) -> Path:
    """Write df to path in the given format."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = _flatten(df)
    if fmt == "csv":
        flat.to_csv(path, index=False)
    elif fmt == "jsonl":
        flat.to_json(path, orient="records", lines=True, date_format="iso", force_ascii=False)
    else:
        flat.to_parquet(path, index=False)
    return path


def read_frame(path: Path, fmt: str) -> pd.DataFrame:
    """Read an export back (JSON columns stay JSON text)."""
    if fmt == "csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    if fmt == "jsonl":
        return pd.read_json(path, orient="records", lines=True, convert_dates=False)
    return pd.read_parquet(path)
