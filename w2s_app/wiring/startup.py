"""Start-up checks with one clear line each: the data dir must be a writable folder with room."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path


class StartupError(RuntimeError):
    """The app cannot start; the message is one line saying why and what to do."""


def check_data_dir(path: Path) -> None:
    """A folder that exists (or can be made), that we may write to, with room for a small file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StartupError(f"the data dir {path} is a file, not a folder: set W2S_DATA_DIR to a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create the data dir {path}: {exc.strerror or exc}") from exc
    probe = path / f".w2s-write-test-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 65536)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StartupError(f"the data dir {path} is full: free some space") from exc
        raise StartupError(
            f"cannot write to the data dir {path}: {exc.strerror or exc} (set W2S_DATA_DIR to a writable folder)"
        ) from exc
    finally:
        probe.unlink(missing_ok=True)


def startup_message(exc: BaseException) -> str | None:
    """One line saying why a process cannot start, for errors of setup (None: a bug, keep the traceback).

    The same for the app, the service and the command line: a data dir that is a file or not writable,
    a database URL that is malformed or a database that does not answer, a broken presets file, a
    bad environment variable.
    """
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from ..config import ConfigError
    from ..identity import IdentityError

    if isinstance(exc, StartupError | ConfigError | IdentityError):
        return str(exc)
    if isinstance(exc, ArgumentError):
        return f"the database URL (W2S_DB_URL) is not valid: {exc}"
    if isinstance(exc, SQLAlchemyError):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"the database does not answer: {reason}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"
    return None
