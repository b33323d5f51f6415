"""The llama.cpp sampler (W2S_ENGINE=llamacpp) on the real offline Gemma-3-270M GGUF."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from w2s_app.config import Settings
from w2s_app.runner import ENGINES, Runner
from w2s_app.search import ReferenceEngine, SamplingParams, run_methods
from w2s_app.search.scoring import sequence_logprob

pytestmark = pytest.mark.slow
PROMPT = "Give three tips for staying healthy."


@pytest.fixture(scope="module")
def offline():
    runner = Runner(Settings.from_env({"W2S_DEVICE": "cpu"}))
    return runner.models(runner.preset("offline"))


def run(models, methods, sp):
    results = run_methods(ENGINES["llamacpp"](models), PROMPT, methods, sp)
    for r in results:
        assert r.ok, r.error
    return results


def test_same_keys_give_the_same_first_chunk(offline):
    sp = SamplingParams(max_new_tokens=24, temperature=1.0, seed=3, noise="shared")
    base, w2s_1, bon, w2s_long = run(
        offline,
        [
            ("baseline", {}),
            ("w2s", {"w": 1, "k": 1, "l": 5}),
            ("bon", {"n": 4}),
            ("w2s", {"w": 2, "k": 2, "l": 24}),
        ],
        sp,
    )
    # The same keyed draws: streams with the same keys agree while llama.cpp's logits do. Its
    # quantized kernels are not batch-invariant (sums run in another order as the cache layout and
    # batch change), so a near-tie may flip later tokens: the first chunk must agree, not the rest.
    assert base.text and w2s_1.text[:20] == base.text[:20]
    assert w2s_long.text[:20] == bon.text[:20]
    (alone,) = run(offline, [("baseline", {})], sp)
    assert alone.text[:20] == base.text[:20]


def test_scores_of_llamacpp_answers_equal_the_reference_scorer(offline):
    sp = SamplingParams(max_new_tokens=32, temperature=0.8, seed=5)
    (res,) = run(offline, [("w2s", {"w": 2, "k": 2, "l": 8})], sp)
    plus = sequence_logprob(offline.tuned, PROMPT, res.text, res.eos)[0]
    minus = sequence_logprob(offline.untuned, PROMPT, res.text, res.eos)[0]
    assert res.score == pytest.approx(plus - minus, abs=2e-3)
    assert len(res.trace) >= 2


def test_greedy_text_agrees_with_float32_transformers(offline):
    # llama.cpp computes with the quantized weights, transformers with them de-quantized to float32:
    # greedy decoding should agree except where two logits nearly tie. Short answers, two prompts.
    sp = SamplingParams(max_new_tokens=12, temperature=0.0, seed=0)
    agree = 0
    for prompt in (PROMPT, "Name a fruit."):
        (fast,) = run_methods(ENGINES["llamacpp"](offline), prompt, [("baseline", {})], sp)
        (ref,) = run_methods(ReferenceEngine(offline), prompt, [("baseline", {})], sp)
        agree += fast.text.split()[:3] == ref.text.split()[:3]
    assert agree >= 1
