"""One process at a time in a shared cache: an exclusive lock on a file beside what is being made.

Test workers and app replicas may start together on one cache (tiny models, converted GGUF weights,
the assembled offline GGUF): the first makes it under the lock, the others wait and then find it.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<path>.lock` (created if needed) for the block."""
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
