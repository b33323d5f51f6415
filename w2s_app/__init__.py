"""w2s-arena: compare baseline, best-of-N and weak-to-strong search side by side, and vote."""

__version__ = "0.1.0"

import os as _os

# torch and llama.cpp share one OpenMP runtime in a process. Its idle workers spin for a long time
# after each parallel region and take the cores from whoever runs next (measured: 8-9 ms of CPU
# burnt after every llama.cpp decode); a short spin keeps the speed (benchmarks/bench_threads.py).
# It must be set before either library starts its threads, hence here, the first module any process
# imports; a write (the OpenMP runtime reads only its environment), kept as setdefault so a user's
# own value wins.
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")
