"""The OpenAI-compatible service: the real `serve` process driven by the official `openai` client."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import openai
import pytest

from tests.engines import compare
from tests.serve_server import ROOT, ServeServer
from w2s_app import options
from w2s_app.config import Settings
from w2s_app.errors import RequestError
from w2s_app.wiring import build_runner

PROMPT = "Write one sentence about the sea."
EXTRA = {"baseline": {}, "bon": {"n_best": 3}, "w2s": {"w": 2, "k": 2, "l": 4}}
CLI_NAMES = {"n_best": "n"}  # the API's n_best is the CLI's --n


@pytest.fixture(scope="module")
def server(serve_server):
    """An open server (no key) with room for a few waiting requests (shared by the session)."""
    return serve_server


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="anything", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def reference(tiny_presets_file, tmp_path_factory):
    """The same search in this process, as `generate` runs it (its own data dir)."""
    data = tmp_path_factory.mktemp("reference")
    settings = Settings.from_env(
        {"W2S_PRESETS": str(tiny_presets_file), "W2S_DATA_DIR": str(data), "W2S_DEVICE": "cpu"}
    )
    runner = build_runner(settings)

    def answer(method: str, prompt: str = PROMPT, **given) -> str:
        fields = {CLI_NAMES.get(k, k): v for k, v in given.items()}
        comp = compare(runner, prompt, "tiny", [method], fields)
        assert comp.results[0].ok, comp.results[0].error
        return comp.results[0].text

    return answer


def stored(server: ServeServer, comparison_id: int) -> dict:
    """A comparison row and its generation from the server's database."""
    con = sqlite3.connect(server.db)
    con.row_factory = sqlite3.Row
    comp = dict(con.execute("select * from comparison where id = ?", (comparison_id,)).fetchone())
    gens = [
        dict(r) for r in con.execute("select * from generation where comparison_id = ?", (comparison_id,))
    ]
    con.close()
    return {**comp, "generations": gens}


def test_models_lists_every_preset_and_method(client):
    ids = {m.id for m in client.models.list()}
    assert {"tiny/w2s", "tiny/bon", "tiny/baseline", "tiny/eft", "tiny-cross/w2s", "offline/w2s"} <= ids
    assert client.models.retrieve("tiny/w2s").id == "tiny/w2s"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("tiny/nope")


@pytest.mark.parametrize("method", ["baseline", "bon", "w2s"])
def test_completion_equals_generate_and_is_stored(client, server, reference, method):
    extra = EXTRA[method]
    out = client.completions.create(
        model=f"tiny/{method}", prompt=PROMPT, max_tokens=16, seed=5, temperature=0.9, extra_body=extra
    )
    want = reference(method, max_new_tokens=16, seed=5, temperature=0.9, **extra)
    choice = out.choices[0]
    assert choice.text == want
    assert choice.finish_reason in ("stop", "length")
    assert out.usage.completion_tokens > 0 and out.usage.prompt_tokens > 0
    search = out.usage.model_extra["search"]
    assert search["strong_tokens"] >= out.usage.completion_tokens
    assert (search["guide_tokens"] > 0) == (method != "baseline")
    cid = out.model_extra["w2s"]["choices"][0]["comparison_id"]
    row = stored(server, cid)
    assert row["status"] == "done" and row["preset"] == "tiny" and row["voter_id"] == "api:anonymous"
    (gen,) = row["generations"]
    assert gen["method"] == method and gen["text"] == want
    assert json.loads(row["settings"])["seed"] == 5
    if method == "w2s":
        assert json.loads(gen["trace"]), "the search trace is stored"
        assert json.loads(gen["params"]) == {"w": 2, "k": 2, "l": 4}


def test_chat_single_message_equals_generate(client, reference):
    out = client.chat.completions.create(
        model="tiny/w2s",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=12,
        seed=2,
        extra_body={"l": 3},
    )
    assert out.choices[0].message.role == "assistant"
    assert out.choices[0].message.content == reference("w2s", max_new_tokens=12, seed=2, l=3)


def test_chat_multi_turn_is_folded_into_one_user_turn(client, reference):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": PROMPT},
    ]
    out = client.chat.completions.create(model="tiny/baseline", messages=messages, max_tokens=10, seed=1)
    folded = f"Be brief.\n\nUser: Hi.\n\nAssistant: Hello.\n\n{PROMPT}"
    assert out.choices[0].message.content == reference("baseline", folded, max_new_tokens=10, seed=1)
    with pytest.raises(openai.BadRequestError, match="last message must come from the user"):
        client.chat.completions.create(model="tiny/baseline", messages=messages[:3], max_tokens=4)


def _stream_texts(stream, chat: bool) -> tuple[list[str], list, object]:
    """Content deltas, finish reasons and the usage chunk of one streamed response."""
    deltas, finishes, usage = [], [], None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            text = c.delta.content if chat else c.text
            if text:
                deltas.append(text)
            if c.finish_reason:
                finishes.append(c.finish_reason)
    return deltas, finishes, usage


@pytest.mark.parametrize("method", ["baseline", "w2s", "bon"])
def test_streamed_text_concatenates_to_the_final_text(client, reference, method):
    extra = EXTRA[method]
    want = reference(method, max_new_tokens=20, seed=9, **extra)
    stream = client.chat.completions.create(
        model=f"tiny/{method}",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=20,
        seed=9,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=extra,
    )
    deltas, finishes, usage = _stream_texts(stream, chat=True)
    assert "".join(deltas) == want
    # Never withdrawn: every prefix sent is a prefix of the final answer (deltas only append).
    sent = ""
    for d in deltas:
        sent += d
        assert want.startswith(sent)
    assert len(finishes) == 1 and usage is not None and usage.completion_tokens > 0
    if method == "baseline":
        assert len(deltas) > 3, "the baseline streams token by token"
    if method == "bon":
        assert len(deltas) == 1, "best-of-N settles only at the end"


def test_completion_stream_and_n_choices(client, reference):
    stream = client.completions.create(
        model="tiny/w2s", prompt=PROMPT, max_tokens=16, seed=7, n=2, stream=True
    )
    texts: dict[int, str] = {}
    for chunk in stream:
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + c.text
    # Choice j uses seed + j: it equals `generate --seed <seed + j>`.
    assert texts == {
        0: reference("w2s", max_new_tokens=16, seed=7),
        1: reference("w2s", max_new_tokens=16, seed=8),
    }


def test_stop_strings_cut_the_answer_whole_and_streamed(client, reference):
    full = reference("baseline", max_new_tokens=24, seed=4, temperature=5.0)  # hot: a long answer
    assert len(full) > 6
    stop = full[len(full) // 2 : len(full) // 2 + 2]  # two characters from the middle of the answer
    want = full[: full.find(stop)]
    out = client.completions.create(
        model="tiny/baseline", prompt=PROMPT, max_tokens=24, seed=4, temperature=5.0, stop=[stop]
    )
    assert out.choices[0].text == want and out.choices[0].finish_reason == "stop"
    stream = client.completions.create(
        model="tiny/baseline", prompt=PROMPT, max_tokens=24, seed=4, temperature=5.0, stop=[stop], stream=True
    )
    deltas, finishes, _ = _stream_texts(stream, chat=False)
    assert "".join(deltas) == want and finishes == ["stop"]


def test_bad_requests_get_openai_errors(client, server):
    # The same bounds and message as the command line.
    with pytest.raises(RequestError) as cli_error:
        options.validate({"w": 99})
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model="tiny/w2s", prompt="x", extra_body={"w": 99})
    assert err.value.body["message"] == str(cli_error.value) and err.value.body["param"] == "w"
    with pytest.raises(openai.BadRequestError, match="whole number"):
        client.completions.create(model="tiny/w2s", prompt="x", extra_body={"k": 2.5})
    with pytest.raises(openai.BadRequestError, match="temperature must be a number between 0 and 5"):
        client.completions.create(model="tiny/w2s", prompt="x", temperature=9)
    with pytest.raises(
        openai.BadRequestError, match="max_new_tokens must be a whole number between 1 and 4096"
    ):
        client.chat.completions.create(
            model="tiny/w2s", messages=[{"role": "user", "content": "x"}], max_tokens=0
        )
    with pytest.raises(openai.BadRequestError, match="noise must be one of"):
        client.completions.create(model="tiny/w2s", prompt="x", extra_body={"noise": "loud"})
    with pytest.raises(openai.BadRequestError, match="the limit is 20000") as err:
        client.completions.create(model="tiny/w2s", prompt="word " * 5000)
    assert err.value.body["code"] == "context_length_exceeded" and err.value.status_code == 400
    with pytest.raises(openai.BadRequestError, match="the prompt is empty"):
        client.completions.create(model="tiny/w2s", prompt="   ")
    with pytest.raises(openai.BadRequestError, match="unsupported field 'tools'"):
        client.completions.create(model="tiny/w2s", prompt="x", extra_body={"tools": []})
    with pytest.raises(openai.BadRequestError, match="logprobs are not supported"):
        client.completions.create(model="tiny/w2s", prompt="x", logprobs=2)
    with pytest.raises(openai.NotFoundError, match="does not exist") as err:
        client.completions.create(model="tiny/nope", prompt="x")
    assert err.value.body["code"] == "model_not_found" and err.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-preset/w2s", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.BadRequestError, match="at most 4 stop strings"):
        client.completions.create(model="tiny/w2s", prompt="x", stop=["a", "b", "c", "d", "e"])
    assert server.health() == {"status": "ok", "running": 0, "waiting": 0}, "a refused request holds no place"


@pytest.fixture(scope="module")
def keyed(tiny_presets_file, tmp_path_factory):
    """A server with a key, one run at a time and no waiting room: one running request fills it."""
    data = tmp_path_factory.mktemp("keyed") / "data"
    srv = ServeServer(
        tiny_presets_file, data, preset="fake-endless", W2S_SERVE_KEY="s3cret-key", W2S_MAX_QUEUE="0", W2S_CONCURRENT="1",
        W2S_MAX_COST="0", W2S_REQUEST_SECONDS="0",
    )  # fmt: skip
    yield srv
    srv.stop()


# Scripted words at 20 ms a step that never end: the queue, disconnect and cancellation tests are
# about the service, and a model sampling 4096 tokens would only spend the CPU.
ENDLESS = "fake-endless/baseline"


def _long_stream(client: openai.OpenAI):
    """A baseline that would run 4096 steps (~80 s), streamed word by word."""
    return client.completions.create(model=ENDLESS, prompt=PROMPT, max_tokens=4096, seed=1, stream=True)


def test_wrong_key_is_refused(keyed):
    bad = openai.OpenAI(base_url=keyed.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        bad.completions.create(model=ENDLESS, prompt="x", max_tokens=2)
    assert err.value.status_code == 401 and err.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    good = openai.OpenAI(base_url=keyed.base_url, api_key="s3cret-key", max_retries=0)
    assert good.completions.create(model=ENDLESS, prompt="x", max_tokens=2).choices[0].text


def test_full_queue_429_and_disconnect_frees_the_slot(keyed):
    client = openai.OpenAI(base_url=keyed.base_url, api_key="s3cret-key", max_retries=0, timeout=60)
    first = _long_stream(client)
    it = iter(first)
    assert next(it).choices[0].text is not None  # the search is running and streaming
    assert keyed.health() == {"status": "ok", "running": 1, "waiting": 0}
    with pytest.raises(openai.RateLimitError) as err:
        client.completions.create(model=ENDLESS, prompt="x", max_tokens=2)
    assert err.value.status_code == 429 and int(err.value.response.headers["retry-after"]) >= 1
    assert err.value.body["code"] == "queue_full"
    first.close()  # the client goes away mid-stream
    gone = time.perf_counter()
    while True:  # the next request must be let in (and produce its first text) within a second
        try:
            nxt = client.completions.create(model=ENDLESS, prompt="x", max_tokens=8, stream=True)
            next(iter(nxt))
            break
        except openai.RateLimitError:
            assert time.perf_counter() - gone < 1.0, "the disconnected search still holds the queue"
            time.sleep(0.02)
    started = time.perf_counter() - gone
    nxt.close()
    assert started < 1.0, f"the next request started {started:.2f} s after the disconnect"
    con = sqlite3.connect(keyed.db)
    status, error = con.execute(
        "select status, error from comparison order by id desc limit 1 offset 1"
    ).fetchone()
    con.close()
    assert status == "failed" and "Cancelled" in error
    # The key is stored only as a hash in the voter id.
    con = sqlite3.connect(keyed.db)
    voters = {r[0] for r in con.execute("select voter_id from comparison")}
    con.close()
    assert all(v.startswith("api:") and "s3cret" not in v and v != "api:anonymous" for v in voters)


def test_serve_warns_when_others_can_reach_it_without_a_key(tiny_presets_file, tmp_path, server):
    srv = ServeServer(tiny_presets_file, tmp_path / "data", "--host", "0.0.0.0")
    try:
        assert srv.health()["status"] == "ok"
    finally:
        srv.stop()
    assert "without W2S_SERVE_KEY" in srv.log.read_text()
    # The shared server: open too, but on the loopback address only, so no warning.
    assert "http://127.0.0.1:" in server.log.read_text()
    assert "without W2S_SERVE_KEY" not in server.log.read_text()


@pytest.mark.slow
def test_offline_w2s_through_the_service_equals_generate(tmp_path):
    srv = ServeServer(None, tmp_path / "data", preset="offline")
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=600)
        stream = client.chat.completions.create(
            model="offline/w2s",
            messages=[{"role": "user", "content": "Name a colour."}],
            max_tokens=8,
            seed=3,
            stream=True,
            extra_body={"w": 2, "k": 2, "l": 4},
        )
        deltas, _, _ = _stream_texts(stream, chat=True)
    finally:
        srv.stop()
    cmd = [sys.executable, "-m", "w2s_app", "generate", "--preset", "offline", "--methods", "w2s",
           "--prompt", "Name a colour.", "--max-new-tokens", "8", "--seed", "3", "--w", "2", "--k", "2", "--l", "4",
           "--json"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("W2S_")}
    env.update(PYTHONPATH=str(ROOT), W2S_DATA_DIR=str(tmp_path / "cli"), W2S_DEVICE="cpu", HF_HUB_OFFLINE="1")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=True)
    assert "".join(deltas) == json.loads(out.stdout)["results"][0]["text"]


def readme_section() -> str:
    """The 'OpenAI-compatible service' section of docs/service.md (once the README's)."""
    text = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    start = text.index("## OpenAI-compatible service")
    return text[start : text.index("\n## ", start + 10)]


def _fenced(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


def test_readme_examples_run_against_the_service(server):
    section = readme_section()
    host = server.base_url.removesuffix("/v1")
    curls = [
        line for body in _fenced(section, "bash") for line in body.splitlines() if line.startswith("curl")
    ]
    assert len(curls) == 3
    for line in curls:
        cmd = line.split("  # needs:")[0].replace("http://127.0.0.1:8000", host).replace("offline/", "tiny/")
        out = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and '"error"' not in out.stdout, f"{cmd}\n{out.stdout}\n{out.stderr}"
        assert (
            out.stdout.rstrip().endswith("data: [DONE]")
            if '"stream": true' in cmd
            else json.loads(out.stdout)
        )
    (code,) = _fenced(section, "py")
    code = code.replace("http://127.0.0.1:8000/v1", server.base_url).replace("offline/", "tiny/")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{code}\n{out.stderr[-3000:]}"
    assert "strong_tokens" in out.stdout


def test_readme_alpaca_eval_config_drives_the_service(server, reference):
    """The request AlpacaEval 0.6.6 makes from the docs' configs (its user-only ChatML template)."""
    yaml = pytest.importorskip("yaml")
    model_cfg, client_cfg = (yaml.safe_load(body) for body in _fenced(readme_section(), "yaml"))
    ((_name, cfg),) = model_cfg.items()
    kwargs = dict(cfg["completions_kwargs"])
    assert cfg["fn_completions"] == "openai_completions" and kwargs.pop("requires_chatml") is True
    assert cfg["prompt_template"] == "Qwen2-72B-Instruct/prompt.txt"
    assert kwargs.pop("client_config_path") == "w2s_alpaca/client.yaml"
    for key in ("num_procs", "price_per_token"):  # AlpacaEval's own, not sent
        kwargs.pop(key)
    client_kwargs = {**client_cfg["default"][0], "base_url": server.base_url, "max_retries": 0}
    assert client_cfg["default"][0]["base_url"] == "http://127.0.0.1:8000/v1"
    model = kwargs.pop("model_name").replace("offline/", "tiny/")
    kwargs["max_tokens"] = 12  # the tiny models, briefly
    instruction = "List two fruits."
    out = openai.OpenAI(**client_kwargs).chat.completions.create(
        model=model, messages=[{"role": "user", "content": instruction}], **kwargs
    )
    want = reference(
        "w2s", instruction, max_new_tokens=12, temperature=kwargs["temperature"], seed=kwargs["seed"],
        **kwargs["extra_body"],
    )  # fmt: skip
    assert out.choices[0].message.content == want and out.usage.total_tokens > 0


def test_with_app_serves_the_page_and_shares_the_model_queue(tiny_presets_file, tmp_path):
    from gradio_client import Client

    srv = ServeServer(
        tiny_presets_file, tmp_path / "data", "--with-app", preset="fake-endless", W2S_MAX_QUEUE="1", W2S_CONCURRENT="1",
        W2S_MAX_COST="0", W2S_REQUEST_SECONDS="0",
    )  # fmt: skip
    try:
        page = subprocess.run(["curl", "-s", srv.base_url.removesuffix("v1")], capture_output=True, text=True)
        assert "w2s-arena" in page.stdout
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=60)
        running, waiting = _long_stream(client), _long_stream(client)  # the one search and the one waiting
        events = iter(running)
        next(events)
        assert srv.health()["waiting"] == 1
        page_client = Client(srv.base_url.removesuffix("v1"), verbose=False)
        token = page_client.predict(api_name="/token")  # the page's voter token, signed by the server
        with pytest.raises(Exception, match="queue full"):
            page_client.predict(PROMPT, token, "fake-endless", "baseline", api_name="/compare")
        events.close()  # the generator first, so nothing is left to finalise later
        running.close()
        waiting.close()
        out = page_client.predict(PROMPT, token, "fake-endless", "baseline,w2s", api_name="/compare")
        assert len(out["answers"]) == 2
    finally:
        srv.stop()


def test_a_client_that_gives_up_on_a_whole_answer_stops_its_search(keyed):
    impatient = openai.OpenAI(base_url=keyed.base_url, api_key="s3cret-key", max_retries=0, timeout=1.5)
    with pytest.raises(openai.APITimeoutError):
        impatient.completions.create(
            model=ENDLESS, prompt=PROMPT, max_tokens=4096, seed=2
        )  # not streamed: the client waits, times out and closes the connection
    gone = time.perf_counter()
    while keyed.health()["running"]:
        assert time.perf_counter() - gone < 1.0, "the abandoned search still runs"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def capped(tiny_presets_file, tmp_path_factory):
    """One request at a time, a 3 s deadline, a cost cap of 10000, and a batch of 4 rows (four baselines)."""
    data = tmp_path_factory.mktemp("capped") / "data"
    srv = ServeServer(
        tiny_presets_file, data, preset="fake-endless", W2S_CONCURRENT="1", W2S_REQUEST_SECONDS="3",
        W2S_MAX_COST="10000", W2S_BATCH_ROWS="4",
    )  # fmt: skip
    yield srv
    srv.stop()


def _rows(server: ServeServer) -> list[tuple[str, str | None]]:
    """Status and error of every stored comparison, newest first."""
    con = sqlite3.connect(server.db)
    rows = con.execute("select status, error from comparison order by id desc").fetchall()
    con.close()
    return rows


EIGHT = {"n=8": {"n": 8, "prompt": PROMPT}, "8 prompts": {"prompt": [f"{PROMPT} {i}" for i in range(8)]}}


@pytest.mark.parametrize("shape", list(EIGHT))
def test_a_request_has_one_deadline_for_all_its_choices(capped, shape):
    """Eight choices of 2 s each (100 steps of 20 ms), two batches of four: each fits the 3 s deadline
    alone, the request does not; it stops at about 3 s (before: 8 x 2 s in turn, 16 s holding the slot)."""
    client = openai.OpenAI(base_url=capped.base_url, api_key="x", max_retries=0, timeout=60)
    before = len(_rows(capped))
    start = time.perf_counter()
    with pytest.raises(openai.BadRequestError, match="the request took longer than 3 s and was stopped"):
        client.completions.create(model=ENDLESS, max_tokens=100, seed=1, **EIGHT[shape])
    took = time.perf_counter() - start
    assert took < 6.0, f"a request of 8 choices under a 3 s deadline held the slot {took:.1f} s"
    now = _rows(capped)
    rows = now[: len(now) - before]
    failed = [error for status, error in rows if status == "failed"]
    assert len(rows) == 8 and failed and all("DeadlineExceeded" in e for e in failed)
    assert capped.health() == {"status": "ok", "running": 0, "waiting": 0}


@pytest.mark.parametrize("shape", list(EIGHT))
def test_the_choices_of_a_request_decode_together(capped, shape):
    """Eight choices of 0.6 s each in two batches of four (more rows than the batch holds) end within the
    3 s deadline; one after another they would need 4.8 s."""
    client = openai.OpenAI(base_url=capped.base_url, api_key="x", max_retries=0, timeout=60)
    start = time.perf_counter()
    out = client.completions.create(model=ENDLESS, max_tokens=30, seed=1, **EIGHT[shape])
    took = time.perf_counter() - start
    assert took < 3.0, f"eight choices of 0.6 s took {took:.1f} s"
    assert [c.index for c in out.choices] == list(range(8))
    assert all(c.finish_reason == "length" and c.text for c in out.choices)
    if shape == "n=8":  # choice j has its own seed, 1 + j
        assert len({c.text for c in out.choices}) == 8


def test_the_cost_cap_counts_every_choice_of_a_request(capped):
    """Five baselines of T=2000 fit a cap of 10000; six, as choices or as prompts, are refused before queueing."""
    client = openai.OpenAI(base_url=capped.base_url, api_key="x", max_retries=0, timeout=60)
    out = client.completions.create(model="fake/baseline", prompt=PROMPT, max_tokens=2000, n=5)
    assert [c.index for c in out.choices] == [0, 1, 2, 3, 4]
    before = len(_rows(capped))
    for asked in ({"n": 6, "prompt": PROMPT}, {"n": 2, "prompt": [PROMPT, "Hi", "Ho"]}):
        with pytest.raises(openai.BadRequestError) as err:
            client.completions.create(model="fake/baseline", max_tokens=2000, **asked)
        message = err.value.body["message"]
        assert "too large (12000 tokens of work for its 6 choices, the limit is 10000" in message
        assert "lower n, the number of prompts or max_tokens" in message
    assert len(_rows(capped)) == before, "a refused request stores nothing"
    assert capped.health() == {"status": "ok", "running": 0, "waiting": 0}


def test_a_client_that_leaves_stops_every_choice(keyed):
    """Three choices stream side by side (deltas under each index); closing the stream stops all three."""
    client = openai.OpenAI(base_url=keyed.base_url, api_key="s3cret-key", max_retries=0, timeout=60)
    stream = client.completions.create(
        model=ENDLESS, prompt=PROMPT, max_tokens=4096, n=3, seed=1, stream=True
    )
    seen: set[int] = set()
    for chunk in stream:
        seen |= {c.index for c in chunk.choices if c.text}
        if seen == {0, 1, 2}:
            break
    stream.close()
    gone = time.perf_counter()
    while keyed.health()["running"]:
        assert time.perf_counter() - gone < 1.0, "a choice of the abandoned request still runs"
        time.sleep(0.02)
    con = sqlite3.connect(keyed.db)
    errors = [r[0] for r in con.execute("select error from comparison order by id desc limit 3")]
    con.close()
    assert len(errors) == 3 and all("Cancelled" in e for e in errors)


def test_a_prompt_beyond_the_context_is_a_400_naming_the_limit(client):
    long_prompt = "1234567890" * 1200  # within the character limit, but one token per digit: > 8192
    with pytest.raises(openai.BadRequestError, match="exceed its context of 8192 tokens"):
        client.completions.create(model="tiny/baseline", prompt=long_prompt, max_tokens=4096)
    # Streamed, the check runs after the stream opened: it ends with an error event instead.
    stream = client.completions.create(
        model="tiny/baseline", prompt=long_prompt, max_tokens=4096, stream=True
    )
    with pytest.raises(openai.APIError, match="exceed its context of 8192 tokens"):
        list(stream)


def test_two_requests_run_at_once_in_one_loop(client, server):
    """W2S_CONCURRENT (default 8): a second search runs beside the first instead of waiting."""
    first, second = _long_stream(client), _long_stream(client)
    a, b = iter(first), iter(second)
    assert next(a).choices[0].text is not None and next(b).choices[0].text is not None
    assert server.health()["running"] == 2 and server.health()["waiting"] == 0
    first.close()
    second.close()


@pytest.mark.parametrize(
    ("env", "key"),
    [({"W2S_SERVE_KEY": "k1", "W2S_RATE_LIMIT": "2", "W2S_ADDRESS_LIMIT": "0"}, "k1"),
     ({"W2S_RATE_LIMIT": "0", "W2S_ADDRESS_LIMIT": "2"}, "anything")],
    ids=["per-key", "per-address"],
)  # fmt: skip
def test_service_limits_per_key_and_per_address(tiny_presets_file, tmp_path, env, key):
    """The page's limits on the service: two requests a minute here, the third is a 429 + Retry-After."""
    srv = ServeServer(tiny_presets_file, tmp_path / "data", preset="fake", **env)
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key=key, max_retries=0, timeout=60)
        # Each choice is a comparison: three choices are over a limit of two (and count nothing).
        with pytest.raises(openai.RateLimitError) as err:
            client.completions.create(model="fake/baseline", prompt="Hi", max_tokens=4, n=3)
        assert "at most 2 a minute and this request counts as 3" in err.value.body["message"]
        assert int(err.value.response.headers["Retry-After"]) >= 1
        for _ in range(2):
            client.completions.create(model="fake/baseline", prompt="Hi", max_tokens=4)
        with pytest.raises(openai.RateLimitError) as err:
            client.completions.create(model="fake/baseline", prompt="Hi", max_tokens=4)
        assert "too many comparisons" in err.value.body["message"]
        assert err.value.body["code"] == "rate_limit_exceeded"
        assert int(err.value.response.headers["Retry-After"]) >= 1
        rows = sqlite3.connect(srv.db).execute("select count(*) from comparison").fetchone()[0]
        assert rows == 2  # the refused request stored nothing
    finally:
        srv.stop()
