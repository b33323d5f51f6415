"""Continuous batching: concurrent comparisons share one decode loop and still give their own texts."""

from __future__ import annotations

import threading
import time

import pytest

from tests import engines
from w2s_app.config import Settings
from w2s_app.contracts import Cancelled, SamplingParams
from w2s_app.model_queue import ModelQueue
from w2s_app.runner import CompareRequest
from w2s_app.search import SharedLoop, rows_needed, run_methods
from w2s_app.wiring import build_runner

PROMPTS = ["Name a colour.", "Say something about the sea, please.", "Hi"]
METHODS = [("baseline", {}), ("bon", {"n": 3}), ("w2s", {"w": 2, "k": 2, "l": 4})]


def alone(models, prompt, methods, sp):
    """What a comparison gives on a fresh engine with nothing beside it."""
    return run_methods(engines.fast(models), prompt, methods, sp)


def together(loop, jobs):
    """Run (prompt, methods, sp) jobs from one thread each, started at once; results or errors."""
    out: list = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def work(i, prompt, methods, sp, kwargs):
        start.wait()
        try:
            out[i] = loop.run(prompt, methods, sp, **kwargs)
        except BaseException as exc:  # the test inspects it
            out[i] = exc

    threads = [
        threading.Thread(target=work, args=(i, *job[:3], job[3] if len(job) > 3 else {}))
        for i, job in enumerate(jobs)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return out


def same(a, b):
    """Same texts and finished flags; scores within float rounding of a different batch."""
    assert [r.text for r in a] == [r.text for r in b]
    assert [r.eos for r in a] == [r.eos for r in b]
    for x, y in zip(a, b):
        assert (x.score is None) == (y.score is None)
        if x.score is not None:
            assert x.score == pytest.approx(y.score, abs=1e-3)


def test_rows_needed_counts_the_streams_decoded_at_once():
    assert rows_needed(METHODS) == 1 + 3 + 4
    assert rows_needed([("eft", {"beta": 1.0})]) == 1


def test_joined_comparisons_give_the_texts_they_give_alone(same_tok):
    sps = [
        SamplingParams(max_new_tokens=20, temperature=1.0, seed=3),
        SamplingParams(max_new_tokens=14, temperature=0.7, top_p=0.9, seed=5),
        SamplingParams(max_new_tokens=20, temperature=1.0, seed=3, noise="shared"),
    ]
    loop = SharedLoop(engines.fast(same_tok), max_rows=64)
    results = together(loop, [(p, METHODS, sp) for p, sp in zip(PROMPTS, sps)])
    for prompt, sp, got in zip(PROMPTS, sps, results):
        assert not isinstance(got, BaseException), got
        assert all(r.ok for r in got), [r.error for r in got]
        same(got, alone(same_tok, prompt, METHODS, sp))
    assert loop.peak_rows > rows_needed(METHODS), "the comparisons never ran in one batch"


def test_a_comparison_joins_the_running_loop_and_finishes_first(same_tok):
    """A short comparison submitted while a long one decodes joins it and leaves before it ends."""
    loop = SharedLoop(engines.fast(same_tok), max_rows=64)
    long_sp = SamplingParams(max_new_tokens=80, temperature=0.0, seed=1)  # greedy: no early end draws
    short_sp = SamplingParams(max_new_tokens=4, temperature=1.0, seed=2)
    finished: list[str] = []
    short_out: list = []
    started = threading.Event()

    def short() -> None:
        started.wait(60)
        short_out.extend(loop.run(PROMPTS[1], [("baseline", {})], short_sp))
        finished.append("short")

    thread = threading.Thread(target=short)
    thread.start()
    long_out = loop.run(PROMPTS[0], [("baseline", {})], long_sp, on_partial=lambda i, text: started.set())
    finished.append("long")
    thread.join(60)
    assert finished == ["short", "long"]
    same(short_out, alone(same_tok, PROMPTS[1], [("baseline", {})], short_sp))
    same(long_out, alone(same_tok, PROMPTS[0], [("baseline", {})], long_sp))
    assert loop.peak_rows == 2


def test_a_cancelled_or_failing_comparison_leaves_and_the_others_finish(same_tok):
    loop = SharedLoop(engines.fast(same_tok), max_rows=64)
    sp = SamplingParams(max_new_tokens=24, temperature=1.0, seed=7)
    calls = {"n": 0}

    def cancel_soon() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    def deadline(i, text, fraction):
        raise TimeoutError("past the deadline")

    results = together(
        loop,
        [
            (PROMPTS[0], METHODS, sp, {"cancelled": cancel_soon}),
            (PROMPTS[1], METHODS, sp, {"on_progress": deadline}),
            (PROMPTS[2], METHODS, sp),
        ],
    )
    assert isinstance(results[0], Cancelled)
    assert isinstance(results[1], TimeoutError)
    same(results[2], alone(same_tok, PROMPTS[2], METHODS, sp))
    # The loop is idle again: its thread ended and a later comparison starts a new one.
    same(loop.run(PROMPTS[0], METHODS, sp), alone(same_tok, PROMPTS[0], METHODS, sp))


def test_comparisons_that_do_not_fit_wait_for_rows(same_tok):
    loop = SharedLoop(engines.fast(same_tok), max_rows=5)
    methods = [("bon", {"n": 3})]
    sp = SamplingParams(max_new_tokens=10, temperature=1.0, seed=11)
    results = together(loop, [(p, methods, sp) for p in PROMPTS])
    assert loop.peak_rows == 3  # never two at once: 3 + 3 rows exceed 5
    for prompt, got in zip(PROMPTS, results):
        same(got, alone(same_tok, prompt, methods, sp))
    big = SharedLoop(engines.fast(same_tok), max_rows=2)  # larger than the limit: runs alone
    same(big.run(PROMPTS[0], methods, sp), alone(same_tok, PROMPTS[0], methods, sp))


def test_runner_runs_concurrent_comparisons_in_one_loop(tiny_env, pool, monkeypatch):
    monkeypatch.setenv("W2S_CONCURRENT", "3")
    runner = build_runner(Settings.from_env(), pool=pool)
    assert runner.concurrency == 3
    settings = {"max_new_tokens": 10, "seed": 4}
    out: dict[str, object] = {}

    def request(prompt: str) -> CompareRequest:
        return CompareRequest(prompt, "tiny", ["baseline", "bon", "w2s"], settings)

    def compare(prompt: str) -> None:
        out[prompt] = runner.compare(request(prompt))

    start = threading.Barrier(len(PROMPTS))
    threads = [threading.Thread(target=lambda p=p: (start.wait(), compare(p))) for p in PROMPTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert runner._loops, "no shared loop ran"
    monkeypatch.setenv("W2S_BATCH_ROWS", "0")
    solo = build_runner(Settings.from_env(), pool=pool)
    assert solo.concurrency == 1
    for prompt in PROMPTS:
        same(out[prompt].results, solo.compare(request(prompt)).results)
    assert not solo._loops


def test_model_queue_runs_several_at_once_then_queues():
    q = ModelQueue(max_waiting=1, max_running=2)
    a, b, c = q.enter(), q.enter(), q.enter()
    assert q.wait_turn(a, lambda: False) and q.wait_turn(b, lambda: False)
    assert q.state() == {"running": 2, "waiting": 1}
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(q.wait_turn(c, lambda: False)))
    waiter.start()
    time.sleep(0.2)
    assert got == []  # both places taken: c waits
    q.leave(a, 1.0)
    waiter.join(5)
    assert got == [True] and q.state() == {"running": 2, "waiting": 0}


def test_finished_comparisons_leave_no_cached_states(same_tok):
    """A search's last unkept beams and a cancelled comparison's caches go when their comparison ends."""
    engine = engines.fast(same_tok)
    loop = SharedLoop(engine, max_rows=64)
    sp = SamplingParams(max_new_tokens=30, temperature=1.0, seed=2)
    for prompt in PROMPTS:
        assert all(r.ok for r in loop.run(prompt, [("w2s", {"w": 2, "k": 3, "l": 4})], sp))
    with pytest.raises(Cancelled):
        calls = iter(range(100))
        loop.run(PROMPTS[0], METHODS, sp, cancelled=lambda: next(calls) > 6)
    deadline = time.monotonic() + 30
    while loop._thread is not None and time.monotonic() < deadline:  # the loop's last round
        time.sleep(0.01)
    assert len(engine.sampler.starts.kept) == 0 and len(engine.scorer.guide_states) == 0
    assert engine.sampler.starts.roots == {} and engine.sampler._rows == [] and engine.scorer._roots == {}
