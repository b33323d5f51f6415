"""A service request's stop strings end its search: a decided answer is not searched further."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.conftest import FAKE_PRESETS, fake_preset
from w2s_app.backends.roles import Models
from w2s_app.config import RoleSpec, Settings
from w2s_app.contracts import SamplingParams
from w2s_app.engines.fake import FakeOptions, FakeRole, FakeSampler, FakeScorer
from w2s_app.model_queue import ModelQueue
from w2s_app.runner import RequestLimits
from w2s_app.search import SharedLoop, run_methods
from w2s_app.search.driver import stop_decided
from w2s_app.serve.client_stops import cut_at_stop
from w2s_app.serve.jobs import ChoiceAnswer, ChoicePlan, Event, Job
from w2s_app.wiring import build_runner
from w2s_app.wiring.model_sources import fake_engine

# Never ends on its own, one word a step: an answer runs its whole budget unless a stop ends it.
PRESETS = FAKE_PRESETS + fake_preset(
    "fake-long", "Scripted words, 1 ms a step, never ending.", "fake:delay=0.001,eos=0", max_new_tokens=40
)
SETTINGS = {"baseline": {}, "w2s": {"w": 1, "k": 2, "l": 4}}  # w=1: the kept beam is settled at once


@pytest.fixture(params=["shared loop", "run_methods"])
def runner(request, tmp_path):
    """A runner over the fake presets: the joinable engine in the shared loop, or (batching off) alone."""
    presets = tmp_path / "presets.toml"
    presets.write_text(PRESETS)
    env = {"W2S_PRESETS": str(presets), "W2S_DATA_DIR": str(tmp_path / "data"), "W2S_DEVICE": "cpu"}
    if request.param == "run_methods":
        env["W2S_BATCH_ROWS"] = "0"
    runner = build_runner(Settings.from_env(env))
    engine = runner.engines.load(runner.preset("fake-long")).engine
    assert (runner._loop(engine) is not None) == (request.param == "shared loop")
    return runner


@pytest.fixture
def steps(monkeypatch) -> list[int]:
    """Counts the fake strong model's decoding steps (each reports its rows' words once)."""
    counter = [0]
    report = FakeSampler._report_partials

    def counted(self: FakeSampler) -> None:
        counter[0] += 1
        report(self)

    monkeypatch.setattr(FakeSampler, "_report_partials", counted)
    return counter


def run_job(runner, method: str, choices: list[ChoicePlan], stops: tuple[str, ...]) -> list[Event]:
    """A streaming request's job run to its end, as the service runs it; its events in order."""

    async def go() -> list[Event]:
        queue = ModelQueue(max_waiting=1)
        settings = {"max_new_tokens": 40, **SETTINGS[method]}
        job = Job(
            runner, queue, queue.enter(), "fake-long", method, settings, choices, stops, "api:t", None,
            RequestLimits(), stream=True,
        )  # fmt: skip
        job.start()
        return [event async for event in job.events(0.05) if event is not None]

    return asyncio.run(go())


def answer_of(events: list[Event], index: int = 0) -> ChoiceAnswer:
    (answer,) = [e.answer for e in events if e.kind == "answer" and e.index == index]
    return answer


def early_stop(text: str) -> str:
    """A whole word the answer writes early (from its fourth word on), first written there."""
    words = text.split()
    j = next(j for j in range(3, len(words)) if words[j] not in words[:j])
    assert j < 12, words
    return f" {words[j]} "


@pytest.mark.parametrize("method", ["baseline", "w2s"])
def test_a_client_stop_ends_the_search_with_the_answer_cut_there(runner, steps, method):
    choice = [ChoicePlan(0, "Say something.", 7)]
    whole = answer_of(run_job(runner, method, choice, ()))
    whole_steps, steps[0] = steps[0], 0
    assert whole.finish_reason == "length" and len(whole.text.split()) == 40
    stop = early_stop(whole.text)

    events = run_job(runner, method, choice, (stop,))
    stopped = answer_of(events)
    want, found = cut_at_stop(whole.text, (stop,))
    assert found and stopped.text == want and stopped.finish_reason == "stop"
    assert "".join(e.text for e in events if e.kind == "delta") == want  # streamed, never past the stop
    # The search ended soon after the stop: a few words past it, not the whole budget.
    assert steps[0] <= len(want.split()) + 6 < whole_steps, (steps[0], whole_steps)
    strong = stopped.result.counts.strong_tokens
    if method == "w2s":  # chunk by chunk: each chunk the search no longer drew is a saved token
        assert strong <= 2 * (len(want.split()) + 2 + 4) < whole.result.counts.strong_tokens
    # The stored search stopped at its settled text, which the answer starts with.
    assert stopped.result.ok and stopped.result.text.startswith(want + stop)


def test_without_a_stop_in_it_the_search_runs_whole(runner, steps):
    """A stop string the answer never writes changes nothing: same text, same steps."""
    choice = [ChoicePlan(0, "Say something.", 7)]
    whole = answer_of(run_job(runner, "baseline", choice, ()))
    whole_steps, steps[0] = steps[0], 0
    same = answer_of(run_job(runner, "baseline", choice, ("no such words",)))
    assert same.text == whole.text and same.finish_reason == "length" and steps[0] == whole_steps


def test_every_choice_ends_at_its_own_stop(runner):
    """n choices with one stop: each is its own seed's answer cut at the stop, the others unharmed."""
    choices = [ChoicePlan(j, "Say something.", 20 + j) for j in range(3)]
    wholes = {j: answer_of(run_job(runner, "baseline", choices, ()), j).text for j in range(3)}
    stop = early_stop(wholes[0])
    events = run_job(runner, "baseline", choices, (stop,))
    for j in range(3):
        want, found = cut_at_stop(wholes[j], (stop,))
        answer = answer_of(events, j)
        assert answer.text == want and answer.finish_reason == ("stop" if found else "length")


def test_a_stop_decides_an_answer_only_once_nothing_can_move_the_cut():
    assert stop_decided("one. two", (".",))
    assert not stop_decided("one two", (".",))
    # After blank text only, a stop does not end the answer (as the model's own stops: find_stop).
    assert not stop_decided("\n.", (".",)) and stop_decided("\n. a.", (".",))
    # "aXb" holds stop "b", but a longer stop that began earlier ("aXbYZ") may still be written,
    # and the answer would be cut before it: nothing is decided yet.
    assert not stop_decided("aXb", ("b", "aXbYZ"))
    assert stop_decided("aXbQ", ("b", "aXbYZ"))


def test_a_stopped_comparison_leaves_the_shared_loop_and_its_neighbour_runs_on(steps):
    """In one batch, a comparison that reached its stop leaves early; the one beside it is unchanged."""
    roles = [FakeRole(RoleSpec(s), FakeOptions.parse(s)) for s in ("fake:delay=0.001,eos=0", "fake", "fake")]
    engine = fake_engine(Models(*roles), FakeScorer(roles[1], roles[2]))
    sp = SamplingParams(max_new_tokens=40, seed=3)
    (whole,) = run_methods(engine, "Hi", [("baseline", {})], sp)
    stop = early_stop(whole.text)
    loop = SharedLoop(engine)
    out: dict[str, list] = {}
    steps[0] = 0

    def one(name: str, stops: tuple[str, ...]) -> None:
        out[name] = loop.run("Hi", [("baseline", {})], sp, stops=stops)

    threads = [threading.Thread(target=one, args=a) for a in (("stopped", (stop,)), ("beside", ()))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert out["beside"][0].text == whole.text and steps[0] >= 40
    want, _ = cut_at_stop(whole.text, (stop,))
    assert cut_at_stop(out["stopped"][0].text, (stop,)) == (want, True)
    assert len(out["stopped"][0].text.split()) <= len(want.split()) + 3  # its search ended at the stop
    assert loop.peak_rows == 2  # they shared the batch
