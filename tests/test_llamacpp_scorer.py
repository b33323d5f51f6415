"""The llama.cpp guide-pair scorer against the transformers scorers, on the real offline guides."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("xllamacpp")

from w2s_app.backends.local import ModelPool
from w2s_app.backends.roles import Models
from w2s_app.config import load_presets
from w2s_app.contracts import ScoreRequest, Stream
from w2s_app.engines.cached_scorer import CachedScorer
from w2s_app.engines.llamacpp_scorer import LlamaCppScorer, guide_contexts
from w2s_app.engines.plain_scorer import PlainScorer, guide_ids
from w2s_app.wiring.role_loaders import LoadContext, local_guide

# One thread: llama.cpp's results do not depend on it, and two threads on a shared 2-core machine
# wait on each other at every barrier whenever another process takes a core.
THREADS = 1

pytestmark = pytest.mark.slow
ASSETS = Path(__file__).resolve().parents[1] / "assets"
# |llama.cpp score - transformers score| / (guide tokens of the answer), measured on 36 chunks
# per preset: at most 0.086 (sentiment-positive) and 0.096 (offline), mean 0.03. llama.cpp reads
# the Q4_1 weights with 8-bit activations; transformers reads them de-quantized to float32.
PER_TOKEN = 0.25
EOS_TERM = 0.5  # |difference| of the EOS term alone (log G+(eos) - log G-(eos)), in nats


@pytest.fixture(scope="module", params=["sentiment-positive", "offline"])
def pair(request):
    """The preset's guide roles (transformers), and a llama.cpp scorer over the same GGUF and adapter."""
    preset = load_presets()[request.param]
    ctx = LoadContext(ModelPool(device="cpu", dtype="float32"))
    models = Models(
        None, local_guide(preset.tuned, ctx, "tuned"), local_guide(preset.untuned, ctx, "untuned")
    )
    return request.param, models, LlamaCppScorer(models, guide_contexts(models, THREADS))


def cases(name: str) -> list[tuple[str, str]]:
    """(prompt, answer) pairs: stored review continuations, or instructions with stored answers."""
    rows = [json.loads(x) for x in (ASSETS / "guides/positive/pairs.jsonl").read_text().splitlines()[::50]][
        :6
    ]
    if name == "offline":
        prompts = (ASSETS / "prompts/instructions.txt").read_text().splitlines()[:6]
        return [(p, r["chosen"]) for p, r in zip(prompts, rows)]
    return [(r["prompt"], r["chosen"]) for r in rows]


def run_chunked(scorer, prompt: str, text: str, eos: bool, parts: int = 3):
    """A search's life of one beam: scored chunk by chunk, each chunk a child of the previous one."""
    out, parent = [], 0
    for k in range(1, parts + 1):
        last = k == parts
        s = Stream(text=text[: len(text) * k // parts], eos=eos and last, done=last, parent=parent)
        if parent:
            scorer.sampling({parent})
        (answer,) = scorer.score_many([(prompt, ScoreRequest((s,)))])
        out.append((answer.value[0], answer.counts.guide_tokens, s))
        parent = s.id
    scorer.keep_prompts(set())
    return out


def tokens(models, s: Stream) -> int:
    return max(len(guide_ids(models.tuned, s.text, s.eos)), len(guide_ids(models.untuned, s.text, s.eos)), 1)


def test_chunked_scores_agree_with_the_cached_and_plain_scorers(pair):
    name, models, ours = pair
    cached, plain = CachedScorer(models), PlainScorer(models)
    errors = []
    # Four answers of the six (two ended by EOS): 12 chunks, each scored by three scorers on the real
    # 135M guides; the tolerance sits at 2.5x the largest difference measured.
    for i, (prompt, text) in enumerate(cases(name)[:4]):
        eos = i % 2 == 0  # half the answers ended by EOS (an EOS term where the role scores one)
        got, want = run_chunked(ours, prompt, text, eos), run_chunked(cached, prompt, text, eos)
        for (value, work, s), (ref, ref_work, _) in zip(got, want):
            # Each guide reads only the chunk's new tokens from the parent's cached prefix, as CachedScorer does.
            assert work == ref_work
            errors.append(abs(value - ref) / tokens(models, s))
        (whole,) = plain.score_many([(prompt, ScoreRequest((got[-1][2],)))])
        assert want[-1][0] == pytest.approx(whole.value[0], abs=1e-3)
    assert max(errors) < PER_TOKEN and np.mean(errors) < PER_TOKEN / 3


def test_the_eos_term_matches_where_the_role_scores_it(pair):
    name, models, ours = pair
    plain = PlainScorer(models)
    prompt, text = cases(name)[0]

    def term(scorer) -> float:
        ended, cut = (Stream(text=text, eos=e, done=True) for e in (True, False))
        (a,) = scorer.score_many([(prompt, ScoreRequest((ended, cut)))])
        return a.value[0] - a.value[1]

    want, got = term(plain), term(ours)
    ours.keep_prompts(set())
    assert got == pytest.approx(want, abs=EOS_TERM)
    assert (want == 0.0) == (name == "offline")  # the offline pair sets score_eos = false
    if name != "offline":
        assert abs(want) > 2 * EOS_TERM  # a real term, so the comparison can fail


def test_states_live_while_they_can_be_parents_and_then_free_their_sequences(pair):
    name, models, ours = pair
    cached = CachedScorer(models)
    prompt, text = cases(name)[1]
    ours.keep_prompts(set())
    # The context is shared by every scorer and sampler on the same GGUF in this process (earlier
    # tests may still hold theirs): this scorer must give back exactly what it took.
    free_before = [(g.ctx, g.ctx.free_ids()) for g in ours.guides]
    for scorer in (ours, cached):  # w2s steps: two candidates, the first kept, two children, one kept
        first = [Stream(text=text[:12], parent=0), Stream(text=text[:15], parent=0)]
        scorer.score_many([(prompt, ScoreRequest(tuple(first)))])
        assert all(scorer.guide_states.get(s.id) is not None for s in first)
        scorer.sampling({first[0].id})
        assert scorer.guide_states.get(first[1].id) is None  # a dropped candidate is never a parent
        second = [Stream(text=text[:20], parent=first[0].id), Stream(text=text[:24], parent=first[0].id)]
        scorer.score_many([(prompt, ScoreRequest(tuple(second)))])
        assert scorer.guide_states.get(first[0].id) is None  # its children hold what it had
        scorer.sampling({second[1].id})
        assert scorer.guide_states.get(second[0].id) is None and scorer.guide_states.get(second[1].id)
    assert len(ours.guide_states) == len(cached.guide_states) == 1
    ours.keep_prompts(set())
    assert len(ours.guide_states) == 0
    for guide, (ctx, free) in zip(ours.guides, free_before, strict=True):  # ids back, their cells empty
        assert ctx.free_ids() == free and not guide.roots
        assert all(ctx.ctx.length(seq) == 0 for seq in free)


def test_many_prompts_in_one_call_score_as_one_call_each(pair):
    name, models, ours = pair
    items = [
        (p, ScoreRequest((Stream(text=t, eos=True, done=True), Stream(text=t[:20]))))
        for p, t in cases(name)[:3]
    ]
    together = [a.value for a in ours.score_many(items)]
    ours.keep_prompts(set())
    alone = [ours.score_many([(p, r)])[0].value for p, r in items]
    ours.keep_prompts(set())
    for a, b, (_, req) in zip(together, alone, items):
        for x, y, s in zip(a, b, req.streams):
            # Not bit-equal: llama.cpp's sums depend on the batch size and on where cells sit.
            assert abs(x - y) / tokens(models, s) < PER_TOKEN
