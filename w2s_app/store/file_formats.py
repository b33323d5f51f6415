"""Write a table as CSV, JSONL or Parquet, and read an export back with the store's column types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import JSON, Boolean, Column, DateTime, Float, Integer, String

from .models import AnswerReward, Comparison, Generation, Judgement, Vote

FORMATS = ("csv", "jsonl", "parquet")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Every exportable table, declared once: the CLI's --what, the page's export menu and the API take these.
TABLES = {"comparisons": Comparison, "generations": Generation, "votes": Vote, "judgements": Judgement,
          "rewards": AnswerReward}  # fmt: skip
# Columns an export adds to a table's own: twin_of, the first generation id of an answer's twin group.
COMPUTED = {"generations": [Column("twin_of", Integer, nullable=True)]}


def _columns(what: str) -> list[Any]:
    """SQLAlchemy columns of an exported table, computed ones last."""
    if what not in TABLES:
        raise ValueError(f"unknown table {what!r}; choose {', '.join(TABLES)}")
    return [*TABLES[what].__table__.columns, *COMPUTED.get(what, [])]


def normalize(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """The canonical in-memory form of a table: UTC timestamps, nullable ints as floats.

    SQLite hands back naive datetimes and PostgreSQL aware ones; both are stored as UTC, so both
    become UTC-aware here and an export does not depend on the database behind it.
    """
    out = df.copy()
    for col in _columns(what):
        if col.name not in out:
            continue
        if isinstance(col.type, DateTime):
            out[col.name] = pd.to_datetime(out[col.name], utc=True).astype("datetime64[us, UTC]")
        elif isinstance(col.type, Integer) and col.nullable:
            out[col.name] = pd.to_numeric(out[col.name]).astype("float64")
        elif isinstance(col.type, String):
            # Plain objects with None for null: pandas' string dtype would turn None into NaN.
            out[col.name] = pd.Series(
                [
                    None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
                    for v in out[col.name]
                ],
                index=out.index,
                dtype=object,
            )
    return out


def _flatten(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """Nested JSON columns as JSON text, so every format holds the same values."""
    out = df.copy()
    for col in _columns(what):
        if isinstance(col.type, JSON) and col.name in out:
            out[col.name] = [json.dumps(v, sort_keys=True) for v in out[col.name]]
    return out


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run: formula-like text (and text that starts with ') gets a leading '.

    Prefixing text that already starts with ' too keeps the mapping one-to-one, so `read_frame`
    drops exactly one leading ' and gets the original back.
    """
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, "'")):
        return "'" + value
    return value


def _csv_uncell(value: Any) -> Any:
    """Undo `csv_cell`."""
    return value[1:] if isinstance(value, str) and value.startswith("'") else value


def write_frame(df: pd.DataFrame, what: str, fmt: str, path: Path) -> Path:
    """Write a table's frame to path in the given format."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = _flatten(normalize(df, what), what)
    if fmt == "csv":
        text = [c for c in flat.columns if flat[c].dtype == object]
        flat[text] = flat[text].map(csv_cell)
        flat.to_csv(path, index=False)
    elif fmt == "jsonl":
        # Microseconds: the default (milliseconds) would not come back equal.
        flat.to_json(path, orient="records", lines=True, date_format="iso", date_unit="us", force_ascii=False)
    else:
        flat.to_parquet(path, index=False)
    return path


def read_frame(path: Path, what: str, fmt: str | None = None) -> pd.DataFrame:
    """Read an export back, equal to what was written (JSON columns parsed, types restored)."""
    fmt = fmt or Path(path).suffix.lstrip(".")
    if fmt == "csv":
        # Everything as text first: pandas' guesses would turn ids into floats and "" into NaN.
        raw = pd.read_csv(path, dtype=str, keep_default_na=False).map(_csv_uncell)
    elif fmt == "jsonl":
        raw = pd.read_json(path, orient="records", lines=True, dtype=False)
    elif fmt == "parquet":
        raw = pd.read_parquet(path)
    else:
        raise ValueError(f"unknown format {fmt!r}; choose {', '.join(FORMATS)}")
    out = pd.DataFrame(index=raw.index)
    for col in _columns(what):
        # An export written before a computed column existed lacks it: null there.
        values = (
            raw[col.name] if col.name in raw else pd.Series([None] * len(raw), index=raw.index, dtype=object)
        )
        out[col.name] = _restore(values, col, text=fmt == "csv")
    return normalize(out, what)


def _restore(values: pd.Series, col: Any, text: bool) -> pd.Series:
    """One column back to the store's type; in CSV an empty cell is null only where null is allowed."""

    def missing(v: Any) -> bool:
        return v is None or (text and v == "" and col.nullable) or (not isinstance(v, str) and pd.isna(v))

    if isinstance(col.type, JSON):
        return pd.Series([json.loads(v) for v in values], index=values.index, dtype=object)
    if isinstance(col.type, DateTime):
        return pd.to_datetime(values.where(~values.map(missing), None), utc=True, format="ISO8601")
    if isinstance(col.type, Boolean):
        return values.map(lambda v: v in (True, "True", "true", 1, "1")).astype(bool)
    if isinstance(col.type, Integer | Float):
        num = pd.to_numeric(values.map(lambda v: None if missing(v) else v))
        return num.astype("int64" if isinstance(col.type, Integer) and not col.nullable else "float64")
    return pd.Series([None if missing(v) else str(v) for v in values], index=values.index, dtype=object)
