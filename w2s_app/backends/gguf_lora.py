"""A PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) as a llama.cpp GGUF adapter.

llama.cpp attaches LoRA adapters from its own GGUF format: per adapted weight `W` of the base GGUF
(e.g. `blk.0.attn_q.weight`), tensors `<name>.lora_a` (rank x in) and `<name>.lora_b` (out x rank),
`general.type = adapter`, `adapter.type = lora`, and `adapter.lora.alpha`. It computes
`W x + s * B (A x)` with `s = scale * alpha / rank`, or `s = scale` when alpha is 0. PEFT's scaling
(alpha / rank, alpha / sqrt(rank) for rsLoRA, per-module patterns) is folded into B here and alpha
is written as 0, so every PEFT variant of plain LoRA maps onto the one rule.

Names come from the base GGUF's architecture through the `gguf` package's name map. llama.cpp's
converter permutes the rows of LLaMA's q and k projections (its rotary layout differs from
Hugging Face's); an adapter's B rows for those get the same permutation.

The result is cached under the user cache dir, keyed by the adapter's files and the base model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from .cache_dir import cache_root
from .local import ModelLoadError

FORMAT = 1  # bump when the written file changes, so cached conversions are redone
# Architectures whose converter permutes q/k rows (rotary pairs interleaved), and those it leaves.
PERMUTES_QK = {"llama"}
PLAIN_QK = {"gemma", "gemma2", "gemma3", "qwen2", "qwen3"}
_PREFIX = "base_model.model."


def gguf_adapter(adapter_dir: Path, base_gguf: Path) -> Path:
    """The GGUF LoRA file for a PEFT adapter on a GGUF base model, converted once and cached."""
    adapter_dir, base_gguf = Path(adapter_dir), Path(base_gguf)
    config_file = adapter_dir / "adapter_config.json"
    weights_file = adapter_dir / "adapter_model.safetensors"
    if not config_file.is_file() or not weights_file.is_file():
        raise ModelLoadError(
            f"{adapter_dir} is not a PEFT adapter (adapter_config.json + adapter_model.safetensors)"
        )
    target = (
        cache_root() / "lora-gguf" / f"{adapter_dir.name}-{_key(config_file, weights_file, base_gguf)}.gguf"
    )
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        try:
            convert(adapter_dir, base_gguf, tmp)
            os.replace(tmp, target)  # atomic: a reader never sees a half-written file
        finally:
            tmp.unlink(missing_ok=True)
    return target


def _key(config_file: Path, weights_file: Path, base_gguf: Path) -> str:
    """Changes when the adapter's files, the base model file or this converter's output change."""
    h = hashlib.sha256(f"format {FORMAT}\n".encode())
    h.update(config_file.read_bytes())
    with weights_file.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    stat = base_gguf.stat()
    h.update(f"{base_gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def convert(adapter_dir: Path, base_gguf: Path, out: Path) -> None:
    """Write the GGUF LoRA file for `adapter_dir` on `base_gguf` to `out`."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    _check_supported(config)
    base = _base_facts(base_gguf)
    arch = base["arch"]
    if arch not in PERMUTES_QK | PLAIN_QK:
        raise ModelLoadError(
            f"LoRA to GGUF: architecture {arch!r} is not supported (known: {sorted(PERMUTES_QK | PLAIN_QK)})"
        )
    names = gguf.get_tensor_name_map(_arch_enum(arch), base["blocks"])
    weights = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in weights.items():
        m = re.fullmatch(r"(.+)\.lora_([AB])\.weight", key)
        if not m:
            raise ModelLoadError(f"LoRA to GGUF: unexpected tensor {key!r} (only lora_A / lora_B weights)")
        pairs.setdefault(m.group(1), {})[m.group(2)] = value.astype(np.float32)
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 0.0)  # 0: llama.cpp applies B A as written
    for module in sorted(pairs):
        a, b = pairs[module]["A"], pairs[module]["B"]
        hf_name = module.removeprefix(_PREFIX)
        gguf_name = names.get_name(hf_name + ".weight", try_suffixes=(".weight",))
        if gguf_name is None or gguf_name not in base["tensors"]:
            raise ModelLoadError(
                f"LoRA to GGUF: {hf_name!r} has no weight in {base_gguf.name} ({gguf_name!r})"
            )
        b = b * _scaling(config, hf_name, rank=a.shape[0])
        if arch in PERMUTES_QK and gguf_name.endswith(("attn_q.weight", "attn_k.weight")):
            heads = base["heads"] if "attn_q" in gguf_name else base["kv_heads"]
            b = _permute_rows(b, heads)
        writer.add_tensor(f"{gguf_name}.lora_a", np.ascontiguousarray(a))
        writer.add_tensor(f"{gguf_name}.lora_b", np.ascontiguousarray(b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _check_supported(config: dict) -> None:
    """Refuse what llama.cpp's LoRA cannot express, rather than convert it wrongly."""
    problems = [
        ("peft_type", config.get("peft_type", "LORA") != "LORA"),
        ("use_dora", bool(config.get("use_dora"))),
        ("bias", config.get("bias", "none") != "none" or bool(config.get("lora_bias"))),
        ("modules_to_save", bool(config.get("modules_to_save"))),
        ("fan_in_fan_out", bool(config.get("fan_in_fan_out"))),
        ("trainable_token_indices", bool(config.get("trainable_token_indices"))),
        ("target_parameters", bool(config.get("target_parameters"))),
        ("alora_invocation_tokens", bool(config.get("alora_invocation_tokens"))),
    ]
    bad = [name for name, is_bad in problems if is_bad]
    if bad:
        raise ModelLoadError(f"LoRA to GGUF: adapter settings not supported by llama.cpp: {', '.join(bad)}")


def _scaling(config: dict, module: str, rank: int) -> float:
    """PEFT's factor on B A for one module: alpha / rank (alpha / sqrt(rank) with rsLoRA)."""
    alpha = float(_pattern(config.get("alpha_pattern") or {}, module, config.get("lora_alpha", 8)))
    return alpha / (rank**0.5 if config.get("use_rslora") else rank)


def _pattern(patterns: dict, module: str, default: object) -> object:
    """A per-module value: the first pattern matching the module's name or its tail, as PEFT does."""
    for key, value in patterns.items():
        if re.fullmatch(rf"(.*\.)?{key}", module):
            return value
    return default


def _permute_rows(b: np.ndarray, heads: int) -> np.ndarray:
    """Reorder output rows from Hugging Face's rotary layout (halves) to llama.cpp's (pairs)."""
    out, rank = b.shape
    return b.reshape(heads, 2, out // heads // 2, rank).swapaxes(1, 2).reshape(out, rank)


def _base_facts(base_gguf: Path) -> dict:
    """Architecture, block and head counts, and tensor names of the base GGUF (its header only)."""
    from .llama_lib import gguf_header

    meta, names = gguf_header(base_gguf)
    arch = str(meta.get("general.architecture"))
    heads = int(meta.get(f"{arch}.attention.head_count") or 0)
    return {
        "arch": arch,
        "blocks": int(meta[f"{arch}.block_count"]),
        "heads": heads,
        "kv_heads": int(meta.get(f"{arch}.attention.head_count_kv") or heads),
        "tensors": set(names),
    }


def _arch_enum(arch: str) -> object:
    """The gguf package's MODEL_ARCH member for an architecture name."""
    import gguf

    for member, name in gguf.MODEL_ARCH_NAMES.items():
        if name == arch:
            return member
    raise ModelLoadError(f"LoRA to GGUF: the gguf package does not know architecture {arch!r}")
