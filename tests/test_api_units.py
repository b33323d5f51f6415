"""API backend pieces that need no server: configuration, redaction, headers, stream building."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from w2s_app.backends.api_config import ApiConfig, public_url, redact
from w2s_app.backends.api_http import _retry_after
from w2s_app.backends.openai_api import ApiClient, Choice, _split_tokens
from w2s_app.backends.roles import ApiRole, Models, RoleSpec
from w2s_app.cli import main
from w2s_app.config import ConfigError, Settings
from w2s_app.contracts import ROOT, SampleRequest, SamplingParams, SearchError, Stream
from w2s_app.engines.api_engine import ApiEngine, api_seed


def test_config_from_settings_and_flags():
    settings = Settings.from_env(
        {"OPENAI_BASE_URL": "http://h:1/v1/", "W2S_API_MODEL": "m", "W2S_API_TIMEOUT": "7"}
    )
    cfg = ApiConfig.for_source("api", settings.api_base, settings.api_model, timeout=settings.api_timeout)
    assert (cfg.base_url, cfg.model, cfg.timeout, cfg.max_retries) == ("http://h:1/v1", "m", 7.0, 4)
    assert ApiConfig.for_source("api", "http://x/v1", "flag").model == "flag"
    assert ApiConfig.for_source("api:fixed", "http://x/v1").model == "fixed"
    assert ApiConfig.for_source("api:fixed", "http://x/v1", parallel=0, max_retries=2.0).parallel == 1
    with pytest.raises(ValueError, match="--api-model"):
        ApiConfig.for_source("api", "http://x/v1")
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        ApiConfig.for_source("api:gpt-3.5-turbo-instruct")
    with pytest.raises(ValueError, match="api_key_env names K, which is not set"):
        ApiConfig.for_source("api", "http://x/v1", "m", "", "K")
    with pytest.raises(ConfigError, match="W2S_API_TIMEOUT must be a number"):
        Settings.from_env({"W2S_API_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="W2S_API_RETRIES must be a whole number"):
        Settings.from_env({"W2S_API_RETRIES": "2.5"})


def test_key_is_not_in_reprs_or_messages():
    key = "sk-proj-abcdefghijklmnop1234"
    cfg = ApiConfig("https://user:pw@api.example.com/v1", "m", api_key=key)
    client = ApiClient(cfg)
    assert key not in repr(cfg) and key not in repr(client) and "pw" not in client.describe()
    assert public_url(cfg.base_url) == "https://api.example.com/v1"
    assert key not in redact(f"Incorrect API key provided: {key}.", key)
    assert "sk-***" in redact("Incorrect API key provided: sk-abc***wxyz")
    client.close()


def test_retry_after_forms():
    assert _retry_after(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    assert _retry_after(httpx.Response(429, headers={"retry-after-ms": "250"})) == 0.25
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= _retry_after(httpx.Response(429, headers={"Retry-After": when})) <= 31
    assert _retry_after(httpx.Response(429)) is None


def test_token_split_keeps_the_total():
    assert _split_tokens([("abc", "stop")], 7, 10) == [7]
    # 'length' choices used max_tokens; the rest of the total goes to the others by text length.
    assert _split_tokens([("x" * 40, "length"), ("y" * 10, "stop"), ("z" * 20, "stop")], 22, 10) == [10, 4, 8]


def _engine(template: str, stop: tuple[str, ...] = ()) -> ApiEngine:
    role = ApiRole(RoleSpec("api", template, stop=stop), ApiClient(ApiConfig("http://127.0.0.1:9/v1", "m")))
    return ApiEngine(Models(role, None, None), None)  # the guides are not needed to build streams


def test_stop_strings_are_cut_across_chunks_and_end_the_answer():
    eng = _engine("Q: {prompt}\nA:", stop=("\nQuestion:",))
    parent = ROOT.extend(" Paris.\nQuest", (), 8, False, 32)
    child = eng.extend(parent, Choice("ion: next one", "length", 8), 32)
    assert child.text == " Paris." and child.eos and child.done and child.n_tokens == 16
    going = eng.extend(parent, Choice(" on", "length", 8), 32)
    assert not going.done and going.parent == parent.id and going.token_ids == ()
    filtered = eng.extend(ROOT, Choice("partial", "content_filter", 3), 32)
    assert filtered.done and not filtered.eos


def test_chat_only_strong_refuses_chunks_before_any_request():
    eng = _engine("chat")
    sp = SamplingParams(max_new_tokens=32)
    ans = eng.sample("hi", sp, SampleRequest((ROOT, ROOT), (0, 1), 8))
    assert isinstance(ans.error, SearchError) and "completions endpoint" in str(ans.error)
    assert ans.counts.api_calls == 0
    partial = Stream(text="so far", n_tokens=8)
    assert isinstance(eng.sample("hi", sp, SampleRequest((partial,), (0,), 24)).error, SearchError)


def test_seeds_differ_per_slot_and_position():
    seeds = {api_seed(0, s, p) for s in range(4) for p in (0, 30, 60)}
    assert len(seeds) == 12 and all(0 <= s < 2**31 for s in seeds)


def test_cli_without_a_model_name_is_bad_input(capsys, monkeypatch, tmp_path):
    for var in ("W2S_API_MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("W2S_DATA_DIR", str(tmp_path))
    code = main(["generate", "--preset", "api", "--api-base", "http://127.0.0.1:9/v1", "--prompt", "hi"])
    err = capsys.readouterr().err
    assert code == 2 and "--api-model" in err and "Traceback" not in err
