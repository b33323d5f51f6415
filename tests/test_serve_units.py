"""Units of the service that need no server: stop-string streaming, the model queue, message folding."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FAKE_PRESETS
from tests.engines import compare
from w2s_app.config import Settings
from w2s_app.errors import RateLimited
from w2s_app.identity import Identity
from w2s_app.limits import Limits, LimitSettings
from w2s_app.model_queue import ModelQueue, QueueFull
from w2s_app.runner import DeadlineExceeded, RequestLimits
from w2s_app.serve.auth import check_key, voter_id
from w2s_app.serve.client_stops import StopStream, cut_at_stop
from w2s_app.serve.errors import OpenAIError as ApiError
from w2s_app.serve.jobs import ChoicePlan, Event, Job
from w2s_app.serve.schemas import ChatRequest, split_model
from w2s_app.store import Store
from w2s_app.wiring import build_runner

ALPHABET = "ab\n"


@given(
    text=st.text(ALPHABET, max_size=30),
    stops=st.lists(st.text(ALPHABET, min_size=1, max_size=4), max_size=3),
    cuts=st.lists(st.integers(0, 30), max_size=8),
)
def test_streamed_deltas_are_never_withdrawn_and_end_at_the_stop(text, stops, cuts):
    stream = StopStream(tuple(stops))
    sent = ""
    want, _ = cut_at_stop(text, tuple(stops))
    for n in sorted(cuts):  # the settled text only grows
        sent += stream.feed(text[:n])
        assert want.startswith(sent)
    sent += stream.finish(text)
    assert sent == want


def test_cut_at_the_earliest_stop():
    assert cut_at_stop("one. two! three", ("!", ".")) == ("one", True)
    assert cut_at_stop("no stop here", ("###",)) == ("no stop here", False)


def test_queue_is_bounded_first_come_first_served_and_frees_places():
    q = ModelQueue(max_waiting=2)
    running, a, b = q.enter(), q.enter(), q.enter()
    with pytest.raises(QueueFull) as full:
        q.enter()
    assert full.value.retry_after >= 1
    assert q.wait_turn(running, lambda: False)
    order: list[str] = []

    def wait(ticket, name, cancel):
        if q.wait_turn(ticket, cancel.is_set):
            order.append(name)
            q.leave(ticket)

    cancel_a, cancel_b = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=wait, args=(a, "a", cancel_a)),
        threading.Thread(target=wait, args=(b, "b", cancel_b)),
    ]
    for t in threads:
        t.start()
    cancel_a.set()  # a leaves the line before its turn: its place is freed, b is next
    q.wake()
    time.sleep(0.2)
    assert q.state() == {"running": 1, "waiting": 1}
    q.leave(running, 1.0)
    for t in threads:
        t.join(5)
    assert order == ["b"] and q.state() == {"running": 0, "waiting": 0}


def test_key_is_checked_and_hashed_into_the_voter_id():
    check_key(None, None)  # no key configured: open
    check_key("k1", "Bearer k1")
    for header in (None, "Bearer k2", "Basic k1", "k1"):
        with pytest.raises(ApiError) as err:
            check_key("k1", header)
        assert err.value.status == 401
    secret = Identity(b"a deployment secret of 32 chars!")
    other = Identity(b"another deployment secret, 32 c!")
    assert voter_id(None, "Bearer whatever", secret.keyed_hash) == "api:anonymous"
    vid = voter_id("k1", "Bearer k1", secret.keyed_hash)
    assert (
        vid.startswith("api:")
        and "k1" not in vid[4:]
        and vid == voter_id("k1", "Bearer k1", secret.keyed_hash)
    )
    # Keyed with the deployment's secret: without it the hash cannot be made (or a weak key guessed).
    assert vid != voter_id("k1", "Bearer k1", other.keyed_hash)
    assert vid[4:] != hashlib.sha256(b"w2s-serve:k1").hexdigest()[:16]


def test_messages_fold_into_one_user_turn():
    one = ChatRequest(model="m/w2s", messages=[{"role": "user", "content": "Hi"}])
    assert one.prompt() == "Hi"
    parts = ChatRequest(
        model="m/w2s",
        messages=[
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]},
            {"role": "assistant", "content": "C"},
            {"role": "user", "content": "D"},
        ],
    )
    assert parts.prompt() == "Be kind.\n\nUser: AB\n\nAssistant: C\n\nD"
    assert split_model("sentiment-positive/w2s") == ("sentiment-positive", "w2s")
    assert split_model("a/b/bon") == ("a/b", "bon")
    with pytest.raises(ValueError):
        split_model("w2s")


@pytest.fixture
def fake_runner(tmp_path):
    """A runner over the scripted presets only (nothing stored), batching on as the service runs it."""
    presets = tmp_path / "presets.toml"
    presets.write_text(FAKE_PRESETS)
    settings = Settings.from_env(
        {"W2S_PRESETS": str(presets), "W2S_DATA_DIR": str(tmp_path / "data"), "W2S_DEVICE": "cpu"}
    )
    return build_runner(settings)


def run_job(
    runner,
    preset: str,
    choices: list[ChoicePlan],
    limits: RequestLimits,
    stops: tuple[str, ...] = (),
    **settings,
) -> tuple[list[Event], BaseException | None]:
    """Run a request's job to its end, as the service does: its events in the order they came, and
    the failure its reader raised after them (None when it ended well)."""

    async def go() -> tuple[list[Event], BaseException | None]:
        queue = ModelQueue(max_waiting=1)
        job = Job(
            runner, queue, queue.enter(), preset, "baseline", settings, choices, stops, "api:t", None, limits
        )
        job.start()
        events: list[Event] = []
        try:
            async for event in job.events(0.05):
                if event is not None:
                    events.append(event)
        except Exception as exc:  # the job's failure, raised by its reader after the last event
            return events, exc
        assert queue.state() == {"running": 0, "waiting": 0}  # the request freed its place
        return events, None

    return asyncio.run(go())


@pytest.mark.parametrize("stops", [(), (" the ", " a ")])
def test_the_choices_of_one_request_decode_in_one_batch(fake_runner, stops):
    """n choices are n comparisons joined into the engine's one loop, each still its own seed's answer
    (cut at the client's stop strings, which end each choice's search on its own)."""
    choices = [ChoicePlan(j, "Say something.", 5 + j) for j in range(3)]
    events, error = run_job(fake_runner, "fake-slow", choices, RequestLimits(), stops, max_new_tokens=24)
    answers = {e.index: e.answer for e in events if e.kind == "answer"}
    assert sorted(answers) == [0, 1, 2] and error is None
    engine = fake_runner.engines.load(fake_runner.preset("fake-slow")).engine
    # The loop held all three at once (one baseline row each): one batch, not three runs in turn.
    assert fake_runner._loop(engine).peak_rows == 3
    cut = 0
    for j in range(3):  # choice j equals a lone comparison (`generate`) with seed 5 + j
        alone = compare(
            fake_runner, "Say something.", "fake-slow", ["baseline"], {"max_new_tokens": 24, "seed": 5 + j}
        )
        want, stopped = cut_at_stop(alone.results[0].text, stops)
        assert answers[j].text == want
        assert answers[j].finish_reason == ("stop" if stopped or alone.results[0].eos else "length")
        cut += stopped
    assert cut == (3 if stops else 0)  # every choice writes one of the stops


def test_the_choices_of_one_request_share_one_deadline(fake_runner):
    """Eight never-ending choices under a 1 s deadline stop together at about 1 s, not 8 x 1 s."""
    choices = [ChoicePlan(j, "Say something.", j) for j in range(8)]
    start = time.perf_counter()
    events, error = run_job(
        fake_runner, "fake-endless", choices, RequestLimits(seconds=1.0), max_new_tokens=4096
    )
    took = time.perf_counter() - start
    assert not [e for e in events if e.kind == "answer"] and isinstance(error, DeadlineExceeded)
    assert "the request took longer than 1 s" in str(error)
    assert took < 2.0, f"eight choices under a 1 s deadline took {took:.1f} s"


def test_limits_count_every_choice_of_a_request(tmp_path):
    """A request of 8 choices is 8 comparisons against the per-minute limits, all or none."""
    limits = Limits(Store(f"sqlite:///{tmp_path / 'w2s.sqlite3'}"), LimitSettings(per_token=5, per_address=0))
    with pytest.raises(RateLimited, match="at most 5 a minute and this request counts as 8") as err:
        limits.check_request("comparison", "v", "addr", count=8)
    assert err.value.retry_after >= 1
    limits.check_request("comparison", "v", "addr", count=5)  # the refused request counted nothing
    with pytest.raises(RateLimited, match="at most 5 a minute; try again"):
        limits.check_request("comparison", "v", "addr")
