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
