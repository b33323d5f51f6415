"""Remote guide configuration and the boundary rule on a vLLM-shaped reply (no server needed)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from w2s_app.backends.remote_guide import (
    Echo,
    RemoteGuide,
    RemoteGuideError,
    remote_guide,
    response_logprob,
)
from w2s_app.backends.roles import RoleSpec
from w2s_app.config import Settings, load_presets
from w2s_app.contracts import SamplingParams
from w2s_app.engines.reference import ReferenceEngine
from w2s_app.engines.remote_scorer import RemoteGuidePair
from w2s_app.errors import RequestError
from w2s_app.search import GuidedEngine, run_methods
from w2s_app.wiring import build_runner


def preset():
    """The built-in api-remote-guides preset."""
    return load_presets()["api-remote-guides"]


def test_preset_has_every_model_on_a_server_and_builds_without_network():
    """The preset's roles are remote, with per-role servers; guides build (nothing is sent yet)."""
    p = preset()
    assert all(r.source == "api" and r.api_base for r in (p.strong, p.tuned, p.untuned))
    for spec, name in ((p.tuned, "tuned guide"), (p.untuned, "untuned guide")):
        g = remote_guide(spec, name)
        assert g.describe() == f"guide at {spec.api_base}"
        assert g.prompt_text("Hi").startswith("<|im_start|>")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"template": "chat"}, "template 'chat' needs the guide's tokenizer"),
        ({"eos": None}, "needs 'eos'"),
        ({"api_base": None}, "needs 'api_base'"),
        ({"model": None}, "needs 'model'"),
        ({"api_key_env": "W2S_NOT_SET_ANYWHERE"}, "api_key_env names W2S_NOT_SET_ANYWHERE, which is not set"),
        ({"adapter": "assets/guides/positive"}, "cannot load an adapter"),
    ],
)
def test_bad_remote_guide_settings_are_clear_errors(change, message):
    """Each missing or impossible setting names itself."""
    with pytest.raises(ValueError, match=message):
        remote_guide(replace(preset().tuned, **change), "tuned guide")


def test_model_name_may_come_from_the_source():
    """source = "api:NAME" names the model when `model` is absent."""
    spec = replace(preset().tuned, source="api:zephyr", model=None)
    assert remote_guide(spec, "tuned guide").client.config.model == "zephyr"


def test_guide_sends_only_the_key_its_preset_names(monkeypatch, tmp_path):
    """OPENAI_API_KEY is the strong model's: a guide without api_key_env sends no key; the W2S_API_*
    settings reach every remote role through the composition root."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-strong-0123456789")
    monkeypatch.setenv("GUIDE_KEY", "sk-guide-1234")
    env = {
        "W2S_API_TIMEOUT": "7",
        "W2S_API_RETRIES": "2",
        "W2S_API_PARALLEL": "0",
        "W2S_DATA_DIR": str(tmp_path),
    }
    named = replace(preset(), untuned=replace(preset().untuned, api_key_env="GUIDE_KEY"))
    models = build_runner(Settings.from_env(env)).engines.load(named).models
    assert models.strong.client.config.api_key == "sk-strong-0123456789"
    assert models.tuned.client.config.api_key == ""
    got = models.untuned.client.config
    assert got.api_key == "sk-guide-1234" and "sk-guide" not in repr(got)
    for role in (models.strong, models.tuned, models.untuned):
        config = role.client.config
        assert (config.timeout, config.max_retries, config.max_seconds, config.parallel) == (7.0, 2, 300.0, 1)


def test_role_spec_accepts_remote_keys_only_by_name():
    """The preset table keys for a remote role; unknown keys still refused."""
    spec = RoleSpec.from_dict({"source": "api", "api_base": "http://h/v1", "model": "m", "api_key_env": "K"})
    assert (spec.api_base, spec.model, spec.api_key_env) == ("http://h/v1", "m", "K")
    with pytest.raises(ValueError, match="unknown keys \\['api_key'\\]"):
        RoleSpec.from_dict({"source": "api", "api_key": "sk-oops"})


def test_mixed_pair_is_refused_before_anything_loads(tmp_path):
    """A guide pair is both local or both remote: one pair has one scorer."""
    runner = build_runner(replace(Settings.from_env(), data_dir=tmp_path))
    mixed = replace(preset(), untuned=RoleSpec("/nowhere/no-such-model", "{prompt}\n", eos="<|endoftext|>"))
    with pytest.raises(
        RequestError,
        match=r"both of one kind.*tuned guide's source is of kind api, the untuned guide's of kind folder",
    ):
        runner.engines.load(mixed)


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_local_strong_model_joins_its_sampler_with_the_remote_pair(tmp_path, tiny_paths, engine):
    """A local strong model with remote guides: the W2S_ENGINE sampler, scored by the remote pair
    (built without network: the guides' server is first asked when a score is)."""
    settings = replace(Settings.from_env(), data_dir=tmp_path, engine=engine, device="cpu")
    runner = build_runner(settings)
    local_strong = replace(preset(), strong=RoleSpec(str(tiny_paths["strong_smol"]), "Q: {prompt}\nA:"))
    loaded = runner.engines.load(local_strong)
    models, eng = loaded.models, loaded.engine
    assert isinstance(models.tuned, RemoteGuide) and isinstance(models.untuned, RemoteGuide)
    assert isinstance(eng.scorer, RemoteGuidePair) and eng.scorer.tuned is models.tuned
    assert isinstance(eng, GuidedEngine if engine == "fast" else ReferenceEngine)
    # EFT mixes the guides' logits, which a server does not send: a clear error, nothing sent.
    (eft,) = run_methods(eng, "Hi", [("eft", {"beta": 1.0})], SamplingParams(max_new_tokens=4))
    assert eft.error and "eft needs the guides' logits" in eft.error


def vllm_echo(prompt_tokens: list[tuple[str, float | None]], generated: str) -> tuple[Echo, str]:
    """An echo as vLLM writes it: BOS text listed first without a log-probability, offsets the running
    length of token texts, the generated token last; and the text that was sent."""
    tokens = [t for t, _ in prompt_tokens] + [generated]
    offsets, at = [], 0
    for t in tokens:
        offsets.append(at)
        at += len(t)
    sent = "".join(t for t, _ in prompt_tokens[1:])
    values = [v for _, v in prompt_tokens] + [-0.5]
    return Echo(sent + generated, tokens, offsets, values, 1), sent


def test_vllm_shaped_reply_bos_text_and_eos_text_are_handled():
    """vLLM lists '<s>' (not sent as text) and prints '</s>' as text: the end-anchored rule still
    finds the response, and the EOS token is the one with the EOS text."""
    toks = [("<s>", None), ("[INST]", -1.0), (" Hi", -2.0), (" [/INST]", -0.1), (" Hello", -3.0)]
    echo, sent = vllm_echo([*toks, (" there", -1.5), ("</s>", -0.25)], "\n")
    assert sent.endswith(" Hello there</s>")
    assert response_logprob(echo, sent, " Hello there", "</s>") == (-3.0 - 1.5 - 0.25, 3)
    echo, sent = vllm_echo([*toks, (" there", -1.5)], " friend")
    assert response_logprob(echo, sent, " Hello there", None) == (-4.5, 2)
    # A straddling token (' [/INST] Hello' read as one) counts as response.
    echo, sent = vllm_echo([("<s>", None), ("[INST] Hi", -1.0), (" [/INST] Hello", -3.0)], "!")
    assert response_logprob(echo, sent, "Hello", None) == (-3.0, 1)
    with pytest.raises(RemoteGuideError, match="did not read the EOS text"):
        echo, sent = vllm_echo([*toks, ("</", -1.0), ("s>", -1.0)], "\n")
        response_logprob(echo, sent, " Hello", "</s>")
