"""The fake engine (engines/fake.py) as the tests that use it rely on: streamed words end as the answer."""

from __future__ import annotations

from w2s_app.backends.roles import Models
from w2s_app.config import RoleSpec
from w2s_app.contracts import SamplingParams
from w2s_app.engines.fake import FakeOptions, FakeRole, FakeScorer
from w2s_app.search import run_methods
from w2s_app.wiring.model_sources import fake_engine


def engine(strong: str):
    roles = [FakeRole(RoleSpec(source), FakeOptions.parse(source)) for source in (strong, "fake", "fake")]
    return fake_engine(Models(*roles), FakeScorer(roles[1], roles[2]))  # as the composition root pairs them


def test_a_slow_baseline_streams_word_by_word_into_its_answer():
    partials: list[str] = []
    sp = SamplingParams(max_new_tokens=12, seed=3)
    (base,) = run_methods(engine("fake:delay=0.001,eos=0"), "Hi", [("baseline", {})], sp,
                          on_partial=lambda i, text: partials.append(text))  # fmt: skip
    assert base.ok and len(base.text.split()) == 12
    grown = [len(p.split()) for p in partials]
    assert grown == sorted(grown) and len(set(grown)) >= 6, grown  # one word a step, never withdrawn
    assert all(base.text.startswith(p) for p in partials)


def test_the_streamed_words_are_the_answer_written_at_once():
    """With or without a delay (and so with or without partials), the same request writes the same text."""
    sp = SamplingParams(max_new_tokens=16, seed=5)
    slow = run_methods(engine("fake:delay=0.001"), "Hi", [("baseline", {}), ("bon", {"n": 2})], sp)
    fast = run_methods(engine("fake"), "Hi", [("baseline", {}), ("bon", {"n": 2})], sp)
    assert [r.text for r in slow] == [r.text for r in fast] and all(r.ok for r in slow)
