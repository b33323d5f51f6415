"""Your records: exports (CSV, JSONL, Parquet; everything with the admin key) and history pages."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..store.file_formats import TABLES
from ..wiring import Services
from .checks import check_preset, number_arg, short
from .errors import ArenaError, database_errors

EXPORT_TABLES = tuple(TABLES)  # what a door may export, declared once in store/file_formats.TABLES

MAX_PAGE = 100_000
EXPORT_PREFIX = "w2s-export-"


def clean_exports(ttl_seconds: float, now: float | None = None) -> int:
    """Delete export folders older than ttl_seconds; returns how many went."""
    now = time.time() if now is None else now
    gone = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{EXPORT_PREFIX}*"):
        try:
            if now - folder.stat().st_mtime > ttl_seconds:
                shutil.rmtree(folder, ignore_errors=True)
                gone += 1
        except OSError:
            continue
    return gone


@database_errors
def export(services: Services, what: Any, fmt: Any, voter_id: str | None) -> Path:
    """Write an export into a fresh temp folder and return the file (voter ids hashed with a secret salt).

    `voter_id` None is the admin's export (everything, judgements too); otherwise only that voter's
    part. Exported votes are people's (a judge's are in the admin's judgements export).
    """
    if what not in EXPORT_TABLES:
        raise ArenaError(f"export what: {', '.join(EXPORT_TABLES)}")
    if what == "judgements" and voter_id is not None:  # raw judge replies may quote anyone's prompt
        raise ArenaError("the judgements export needs the admin key")
    if fmt not in ("csv", "jsonl", "parquet"):
        raise ArenaError("export format: csv, jsonl or parquet")
    clean_exports(services.settings.export_ttl_seconds)
    folder = Path(tempfile.mkdtemp(prefix=EXPORT_PREFIX))
    salt = services.identity.export_salt()
    return services.store.export(what, fmt, folder / f"w2s-{what}.{fmt}", voter_id=voter_id, salt=salt)


def check_page(page: Any) -> int:
    """A history page number: a whole number from 1 to MAX_PAGE, else ArenaError."""
    if page is None or page == "":
        return 1
    number = number_arg(page, "page", 1, MAX_PAGE)
    if number != int(number):
        raise ArenaError(f"page must be a whole number from 1 to {MAX_PAGE}, got {short(page)}")
    return int(number)


@database_errors
def history(services: Services, page: Any, preset: Any, voter_id: str | None, page_size: int = 20) -> Any:
    """One page of past comparisons, newest first: the voter's own (voter_id None: everyone's, admin)."""
    number = check_page(page)
    preset = check_preset(services, preset)
    return services.store.list_comparisons(page_size, (number - 1) * page_size, preset or None, voter_id)
