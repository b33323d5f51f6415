"""The search methods against DESIGN.md's oracles, on tiny real transformers models."""

from __future__ import annotations

import math

import pytest
import torch

from tests import engines
from w2s_app.contracts import SamplingParams, SearchError
from w2s_app.engines.plain_scorer import batch_logprobs, sequence_logprob
from w2s_app.search import run_methods
from w2s_app.search.methods import rank


def run(models, methods, sp, prompt="Name a colour."):
    results = run_methods(engines.reference(models), prompt, methods, sp)
    for r in results:
        assert r.ok, r.error
    return results


@pytest.mark.parametrize("setup", ["same_tok", "cross_tok"])
def test_w1_k1_is_baseline(setup, request):
    models = request.getfixturevalue(setup)
    sp = SamplingParams(max_new_tokens=20, temperature=1.0, seed=7, noise="shared")
    base, w2s = run(models, [("baseline", {}), ("w2s", {"w": 1, "k": 1, "l": 6})], sp)
    assert base.text == w2s.text
    assert base.text  # something was sampled


@pytest.mark.parametrize("setup", ["same_tok", "cross_tok"])
def test_long_chunk_is_best_of_n(setup, request):
    models = request.getfixturevalue(setup)
    sp = SamplingParams(max_new_tokens=16, temperature=1.0, seed=3, noise="shared")
    bon, w2s = run(models, [("bon", {"n": 6}), ("w2s", {"w": 2, "k": 3, "l": 16})], sp)
    assert w2s.text == bon.text
    assert w2s.score == pytest.approx(bon.score, abs=1e-6)
    # Best-of-N really picked the maximum of its candidates.
    assert bon.score == max(bon.trace[0].scores)


def test_independent_noise_gives_each_method_its_own_draws(same_tok):
    sp = SamplingParams(max_new_tokens=20, temperature=1.0, seed=7)  # independent is the default
    base, w2s, bon = run(
        same_tok, [("baseline", {}), ("w2s", {"w": 1, "k": 1, "l": 6}), ("bon", {"n": 2})], sp
    )
    # Under shared noise these would be one text (see test_w1_k1_is_baseline); here they are not.
    assert base.text != w2s.text
    assert base.text not in bon.trace[0].chunks
    # A method's draws depend on its own configuration only, not on what else runs beside it.
    (alone,) = run(same_tok, [("w2s", {"w": 1, "k": 1, "l": 6})], sp)
    assert alone.text == w2s.text


def test_settled_text_holds_back_what_may_change():
    from w2s_app.contracts.stops import settled_text

    assert settled_text("Paris is big.\nQues", ("\nQuestion:",)) == "Paris is big."
    assert settled_text("caf\ufffd", ()) == "caf"
    assert settled_text("All done", ("\n\n",)) == "All done"
    assert settled_text("Line\n", ("\n\n",)) == "Line"


def test_seeded_and_reproducible(same_tok):
    sp = SamplingParams(max_new_tokens=20, temperature=1.0, seed=11)
    a = run(same_tok, [("w2s", {"w": 2, "k": 2, "l": 5})], sp)[0]
    b = run(same_tok, [("w2s", {"w": 2, "k": 2, "l": 5})], sp)[0]
    c = run(same_tok, [("w2s", {"w": 2, "k": 2, "l": 5})], SamplingParams(20, 1.0, 1.0, 12))[0]
    assert (a.text, a.score) == (b.text, b.score)
    assert a.text != c.text


def test_noise_is_keyed_by_the_prompt():
    from w2s_app.contracts.seeds import prompt_seed
    from w2s_app.engines.token_choice import gumbel

    assert prompt_seed(0, "The film was") == prompt_seed(0, "The film was")
    seeds = {prompt_seed(s, p) for s in (0, 1) for p in ("The film was", "The film was ", "I thought")}
    assert len(seeds) == 6 and all(0 <= x < 2**32 for x in seeds)
    # Two prompts with the same user seed draw independent noise (the correlation of the raw draws is ~0).
    a, b = (gumbel(prompt_seed(0, p), 0, 0, 50_000, "cpu") for p in ("The film was", "I thought"))
    assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 0.05


def hand_logprob(role, prompt, text, eos):
    """Log-probability computed token by token, feeding one growing prefix at a time."""
    p = role.prompt_ids(prompt)
    y = role.response_ids(text) + ([role.eos_id] if eos else [])
    total = 0.0
    for i, tok in enumerate(y):
        with torch.no_grad():
            logits = role.model(input_ids=torch.tensor([p + y[:i]])).logits[0, -1].double()
        total += float(logits[tok] - torch.logsumexp(logits, -1))
    return total


def test_scorer_matches_hand_computed_ratio(same_tok):
    prompt, text = "Say hi.", " Hello there, friend"
    for eos in (False, True):
        plus, n_plus = sequence_logprob(same_tok.tuned, prompt, text, eos)
        minus, _ = sequence_logprob(same_tok.untuned, prompt, text, eos)
        expected = hand_logprob(same_tok.tuned, prompt, text, eos) - hand_logprob(
            same_tok.untuned, prompt, text, eos
        )
        assert plus - minus == pytest.approx(expected, rel=1e-4, abs=1e-4)
        assert n_plus == len(same_tok.tuned.response_ids(text)) + eos


def test_eos_term_only_for_finished(same_tok):
    role = same_tok.tuned
    prompt, text = "Say hi.", " Hello"
    cut, _ = sequence_logprob(role, prompt, text, eos=False)
    ended, _ = sequence_logprob(role, prompt, text, eos=True)
    p, y = role.prompt_ids(prompt), role.response_ids(text)
    with torch.no_grad():
        logits = role.model(input_ids=torch.tensor([p + y])).logits[0, -1]
    eos_lp = float(torch.log_softmax(logits, -1)[role.eos_id])
    assert ended - cut == pytest.approx(eos_lp, abs=1e-4)


@pytest.mark.parametrize("side", ["left", "right"])
def test_batch_scoring_equals_single(same_tok, side):
    role = same_tok.tuned
    texts = [" a", " a much longer answer with many more tokens in it", "", " mid length text"]
    eos = [True, False, True, False]
    batch, n = batch_logprobs(role, "Q?", texts, eos, padding_side=side)
    single = [sequence_logprob(role, "Q?", t, e)[0] for t, e in zip(texts, eos)]
    assert batch == pytest.approx(single, abs=1e-4)
    assert n == sum(sequence_logprob(role, "Q?", t, e)[1] for t, e in zip(texts, eos))


def test_finished_beams_kept_once_never_expanded(same_tok):
    # A long budget with short chunks: tiny models end by EOS often, so beams finish mid-search. The
    # fast engine (which gives the reference's texts exactly, test_fast.py): many chunks cost the
    # plain oracle quadratic time, and what is checked here is the search's trace.
    seen_eos = False
    for seed in range(5):  # until a beam has finished early (the first seed usually does)
        if seen_eos:
            break
        sp = SamplingParams(max_new_tokens=60, temperature=1.0, seed=seed)
        (res,) = run_methods(
            engines.fast(same_tok), "Name a colour.", [("w2s", {"w": 3, "k": 2, "l": 4})], sp
        )
        assert res.ok, res.error
        for prev, step in zip(res.trace, res.trace[1:]):
            carried = [j for j, c in enumerate(step.carried) if c]
            assert all(step.finished[j] for j in carried)
            # Each finished kept beam reappears exactly once, as a carried candidate.
            assert len(carried) == len([i for i in prev.kept if prev.finished[i]])
            new_parents = step.parents[len(carried) :]
            for k_idx, i in enumerate(prev.kept):
                if prev.finished[i]:
                    seen_eos = True
                    assert k_idx not in new_parents  # never expanded
                else:
                    assert new_parents.count(k_idx) == 2  # K successors
            assert len(set(step.kept)) == len(step.kept)
        assert all(res.trace[-1].finished[i] for i in res.trace[-1].kept)
    assert seen_eos, "no beam finished early; the test did not exercise the rule"


def test_ties_go_to_lower_index():
    assert rank([1.0, 2.0, 2.0, 0.5, 2.0], 2) == [1, 2]
    assert rank([0.0, 0.0, 0.0], 3) == [0, 1, 2]


def test_eft_refuses_mismatched_vocabularies(cross_tok):
    sp = SamplingParams(max_new_tokens=8, temperature=1.0, seed=0)
    (res,) = run_methods(engines.reference(cross_tok), "Hi", [("eft", {"beta": 1.0})], sp)
    assert not res.ok and "vocabulary" in res.error
    assert SearchError.__name__ in res.error


def test_eft_runs_on_shared_vocabulary(same_tok):
    sp = SamplingParams(max_new_tokens=12, temperature=1.0, seed=0, noise="shared")
    (res, base) = run(same_tok, [("eft", {"beta": 0.0}), ("baseline", {})], sp)
    # beta = 0 adds nothing: EFT samples exactly the baseline.
    assert res.text == base.text


def test_counts_and_trace(same_tok):
    sp = SamplingParams(max_new_tokens=16, temperature=1.0, seed=1)
    (res,) = run(same_tok, [("w2s", {"w": 2, "k": 2, "l": 4})], sp)
    assert res.counts.strong_tokens > 0 and res.counts.guide_tokens > 0
    assert res.seconds > 0
    first = res.trace[0]
    assert len(first.scores) == 4 and len(first.kept) == 2
    assert all(math.isfinite(s) for s in first.scores)
    assert res.score == max(res.trace[-1].scores)


def test_stop_string_cuts_and_counts_as_eos(pool, tiny_paths):
    from tests.conftest import make_models

    models = make_models(pool, tiny_paths, stop=(" ",))  # every word break stops
    sp = SamplingParams(max_new_tokens=20, temperature=1.0, seed=2)
    (res,) = run(models, [("baseline", {})], sp)
    assert " " not in res.text.strip() and res.eos


def test_bounded_gumbel_equals_perturbing_every_entry():
    from w2s_app.engines.token_choice import GUMBEL_MAX, choose_tokens, gumbel

    torch.manual_seed(0)
    for scale in (0.1, 3.0, 30.0):  # flat, typical and peaked distributions
        logits = torch.randn(5, 3000) * scale
        logits[2, 100:] = float("-inf")  # masked entries never win
        keys = [(7, slot, 11) for slot in range(5)]
        full = [int((logits[i].double() + gumbel(*keys[i], 3000, "cpu").double()).argmax()) for i in range(5)]
        assert choose_tokens(logits, keys, 1.0, 1.0) == full
        assert choose_tokens(logits, keys, 1.0, 1.0)[2] < 100
    noise = gumbel(1, 2, 3, 200_000, "cpu")
    assert float(noise.max()) <= GUMBEL_MAX and abs(float(noise.mean()) - 0.5772) < 0.01  # Euler's gamma


def test_draws_follow_the_softmax():
    from w2s_app.engines.token_choice import choose_tokens

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, float("-inf")]])
    probs = torch.softmax(logits / 0.8, dim=-1)[0]
    n = 20_000
    picks = [choose_tokens(logits, [(3, 0, pos)], 0.8, 1.0)[0] for pos in range(n)]
    freq = torch.bincount(torch.tensor(picks), minlength=5).double() / n
    assert freq[4] == 0
    assert torch.allclose(freq, probs.double(), atol=0.01)
