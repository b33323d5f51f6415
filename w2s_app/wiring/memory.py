"""A long-running process's memory stays flat: at most two glibc malloc arenas.

glibc gives each thread that contends for malloc an arena of its own (up to 8 per core), and the
app's threads (Gradio workers, a thread per comparison, the model loop) leave freed memory spread
over them. Measured with `benchmarks/bench_soak.py` on the offline preset, rounds of 8 raters:
resident memory grew 2089 -> 2268 MiB over 5 rounds with glibc's default and stayed at 2152-2156 MiB
from the second round with two arenas, waits unchanged.
"""

from __future__ import annotations

import ctypes
import ctypes.util

ARENAS = 2
M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process (before its threads start); False where not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator keeps its own ways
        return False
