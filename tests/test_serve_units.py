"""Units of the service that need no server: stop-string streaming, the model queue, message folding."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from w2s_app.identity import Identity
from w2s_app.model_queue import ModelQueue, QueueFull
from w2s_app.serve.auth import check_key, voter_id
from w2s_app.serve.errors import OpenAIError as ApiError
from w2s_app.serve.schemas import ChatRequest, split_model
from w2s_app.serve.stops import StopStream, cut_at_stop

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
    running, a, b = q.join(), q.join(), q.join()
    with pytest.raises(QueueFull) as full:
        q.join()
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
