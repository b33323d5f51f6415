"""W2S_DTYPE=auto: the precision local transformers models get on a device.

On a GPU: bfloat16 (float16 where bfloat16 is missing); on Apple's MPS: float16. On a CPU the answer
depends on the chip: int8 matmuls pay off with VNNI/AMX and are slower than float32 without them (a
2-core AVX2-only EPYC: 162 against 123 ms per token). So the CPU's choice is measured once per
machine (CPU, instruction flags, torch version, threads) on a decode-shaped step and cached: int8
only where it beats float32 by a margin. Both keep the fast engine equal to the reference engine
(int8 rows never depend on their batch), which is why bfloat16 is never chosen on a CPU by itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from .cache_dir import cache_root

log = logging.getLogger(__name__)

MARGIN = 1.25  # int8 must be this much faster than float32 to be chosen (noise on a shared machine)


def auto_precision(device: str) -> str:
    """The precision `auto` means on this device (measured once per machine on a CPU)."""
    import torch

    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "mps":
        return "float16"
    return cpu_precision()


def training_precision(device: str) -> str:
    """The precision a model is tuned in: `auto`'s choice, except int8 (inference only) becomes float32."""
    if device == "cpu":
        return "float32"  # int8 layers cannot take a LoRA adapter, and CPU half precision trains poorly
    return auto_precision(device)


def cpu_identity() -> dict[str, str]:
    """What decides CPU matmul speed: the model name, the vector flags, torch and its threads."""
    import torch

    name, flags = "unknown", ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        lines = info.splitlines()
        name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), name)
        wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
        have = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
        flags = ",".join(f for f in wanted if f in have)
    except OSError:  # not Linux: the torch build and thread count still key the measurement
        pass
    return {"cpu": name, "flags": flags, "torch": torch.__version__, "threads": str(torch.get_num_threads())}


def cpu_precision(cache: Path | None = None) -> str:
    """float32 or int8, whichever this CPU runs faster (by MARGIN), measured once and cached."""
    ident = cpu_identity()
    key = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    path = (cache or cache_root()) / "precision" / f"{key}.json"
    try:
        return json.loads(path.read_text())["choice"]
    except (OSError, ValueError, KeyError):
        pass
    timings = measure()
    choice = choose(timings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"choice": choice, "ms": timings, **ident}, indent=1))
        tmp.replace(path)
    except OSError as exc:  # a read-only cache only costs the measurement next time
        log.warning("could not cache the precision choice at %s: %s", path, exc)
    log.info("W2S_DTYPE=auto on this CPU: %s (ms per step: %s)", choice, timings)
    return choice


def choose(timings: dict[str, float]) -> str:
    """int8 where it beats float32 by MARGIN, else float32."""
    return "int8" if timings["int8"] * MARGIN < timings["float32"] else "float32"


def measure(rows: int = 9, repeats: int = 5) -> dict[str, float]:
    """ms per decode-shaped step (a 270M-class layer and a slice of its output layer), fastest of repeats."""
    import copy

    import torch

    from .int8 import quantize_linears

    torch.manual_seed(0)
    dense = torch.nn.Sequential(
        torch.nn.Linear(640, 2048, bias=False),
        torch.nn.Linear(2048, 640, bias=False),
        torch.nn.Linear(640, 16384, bias=False),
    ).eval()
    int8 = copy.deepcopy(dense)
    quantize_linears(int8)
    x = torch.randn(rows, 640)
    out: dict[str, float] = {}
    with torch.inference_mode():
        for name, net in (("float32", dense), ("int8", int8)):
            net(x)  # warm-up: first calls allocate and pick kernels
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(4):
                    net(x)
                best = min(best, (time.perf_counter() - start) / 4)
            out[name] = round(best * 1000, 3)
    return out
