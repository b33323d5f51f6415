"""Reduced precisions (W2S_DTYPE=bfloat16, int8) against float32, the oracle's, on tiny real models.

Measured on the tiny models (SmolLM2 and Gemma tokenizers, seeds 0-3): baseline and best-of-N
write the same texts as float32 in both modes; a w2s search can take another branch (a guide
score moves and a different chunk wins), so its text is not compared. Guide log-probabilities of
the same text moved by at most 0.017 (bfloat16) and 0.030 (int8) per scored token; the tolerance
below is 0.05 per token. int8 keeps every token's row independent of its batch, so the fast engine
writes exactly the reference's texts; bfloat16 does not (its matmuls round differently by batch
shape), so there only the unbatched-equivalent parts are compared.
"""

from __future__ import annotations

import pytest
import torch

from tests import engines
from tests.conftest import make_models
from tests.test_fast import PROMPT, SETTINGS, both
from w2s_app.backends.adapters import adapter_off, load_adapted
from w2s_app.backends.int8 import Int8Linear, quantize_linears
from w2s_app.backends.local import ModelLoadError, ModelPool, pick_dtype
from w2s_app.backends.roles import Role, RoleSpec
from w2s_app.config import ConfigError, Settings
from w2s_app.contracts import SamplingParams
from w2s_app.engines.plain_scorer import sequence_logprob
from w2s_app.search import run_methods

MODES = ["bfloat16", "int8"]
PER_TOKEN = 0.05  # largest |log-prob difference| per scored guide token against float32
# fast vs reference scores under int8, per scored guide token: a float rounding difference before a
# layer can move an activation across an int8 rounding step, so the same texts' scores differ by
# more than float32's 1e-4 (measured up to 0.0028 on a score of 73, about 5e-5 per token).
INT8_PER_TOKEN = 2e-4
TEXT_METHODS = [("baseline", {}), ("bon", {"n": 3})]
ALL_METHODS = [*TEXT_METHODS, ("w2s", {"w": 2, "k": 2, "l": 6})]


@pytest.fixture(scope="module")
def pools() -> dict[str, ModelPool]:
    """One pool per precision (the float32 one is the reference)."""
    return {dtype: ModelPool(device="cpu", dtype=dtype) for dtype in ["float32", *MODES]}


# The Gemma-tokenizer model's 262k-token vocabulary makes each step several times dearer than
# SmolLM2's: fewer seeds there.
GEMMA_SEEDS = 1


def sp(seed: int) -> SamplingParams:
    return SamplingParams(max_new_tokens=30, temperature=1.0, seed=seed)


def test_int8_linear_is_close_and_batch_invariant():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96)
    q = Int8Linear(linear)
    x = torch.randn(5, 7, 64)
    with torch.inference_mode():
        exact, got = linear(x), q(x)
        alone = q(x[2:3, 4:5])
    assert got.shape == exact.shape and got.dtype == exact.dtype
    assert (got - exact).abs().max() <= 0.02 * exact.abs().max()  # measured 1.1%: 8-bit weights and inputs
    assert not torch.equal(got, exact)  # it did quantize
    assert torch.equal(alone[0, 0], got[2, 4])  # a token's output does not depend on its batch


def test_int8_zero_rows_and_empty_input():
    q = Int8Linear(torch.nn.Linear(8, 4, bias=False))
    with torch.inference_mode():
        assert torch.equal(q(torch.zeros(2, 8)), torch.zeros(2, 4))  # padding rows: no NaN
        assert q(torch.zeros(0, 8)).shape == (0, 4)


@pytest.mark.parametrize("dtype", MODES)
def test_models_load_in_the_mode(pools, tiny_paths, dtype):
    loaded = pools[dtype].get(str(tiny_paths["tuned"]))
    linears = [m for m in loaded.model.modules() if type(m) is torch.nn.Linear]
    int8 = [m for m in loaded.model.modules() if isinstance(m, Int8Linear)]
    if dtype == "int8":
        assert int8 and not linears and loaded.dtype == "int8"
    else:
        assert not int8 and {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}


@pytest.mark.parametrize("setup", ["strong_smol", "strong_gemma"])
@pytest.mark.parametrize("dtype", MODES)
def test_texts_equal_float32(pools, tiny_paths, dtype, setup):
    """Baseline and best-of-N: the same texts as float32 (the strong model and the guides' pick)."""
    ref = make_models(pools["float32"], tiny_paths, setup)
    mode = make_models(pools[dtype], tiny_paths, setup)
    for seed in range(GEMMA_SEEDS if setup == "strong_gemma" else 2):
        want = run_methods(engines.reference(ref), PROMPT, TEXT_METHODS, sp(seed))
        got = run_methods(engines.reference(mode), PROMPT, TEXT_METHODS, sp(seed))
        assert [r.text for r in got] == [r.text for r in want], (dtype, setup, seed)


@pytest.mark.parametrize("dtype", MODES)
def test_guide_scores_within_tolerance(pools, tiny_paths, dtype):
    """float32's answers scored by the mode's guides: within PER_TOKEN per token, and not identical."""
    ref = make_models(pools["float32"], tiny_paths)
    mode = make_models(pools[dtype], tiny_paths)
    diffs = []
    for seed in range(2):
        for r in run_methods(engines.reference(ref), PROMPT, ALL_METHODS, sp(seed)):
            for guide in ("tuned", "untuned"):
                want, n = sequence_logprob(getattr(ref, guide), PROMPT, r.text, r.eos)
                got, _ = sequence_logprob(getattr(mode, guide), PROMPT, r.text, r.eos)
                assert abs(got - want) <= PER_TOKEN * n, (guide, r.label, got, want)
                diffs.append(abs(got - want))
    assert max(diffs) > 0  # the mode is really in effect


@pytest.mark.parametrize("setup", ["same_tok", "cross_tok"])
@pytest.mark.parametrize("methods", SETTINGS[-1:], ids=lambda m: "+".join(n for n, _ in m))  # every method
def test_int8_fast_equals_reference(pools, tiny_paths, setup, methods):
    """int8: the fast engine's texts, traces and counts are the reference's, as in float32."""
    models = make_models(pools["int8"], tiny_paths, "strong_smol" if setup == "same_tok" else "strong_gemma")
    for seed in range(GEMMA_SEEDS if setup == "cross_tok" else 2):
        ref, fast = both(models, methods, sp(seed))
        for r, f in zip(ref, fast):
            assert (f.text, f.eos, f.counts.strong_tokens) == (r.text, r.eos, r.counts.strong_tokens), r.label
            assert [s.kept for s in f.trace] == [s.kept for s in r.trace]
            assert [s.chunks for s in f.trace] == [s.chunks for s in r.trace]
            if r.score is not None:
                n = sum(sequence_logprob(g, PROMPT, r.text, r.eos)[1] for g in (models.tuned, models.untuned))
                assert f.score == pytest.approx(r.score, abs=INT8_PER_TOKEN * n), r.label


@pytest.mark.parametrize("setup", ["strong_smol", "strong_gemma"])
def test_bfloat16_fast_agrees_with_reference(pools, tiny_paths, setup):
    """bfloat16: same baseline and best-of-N texts; w2s may branch differently, scores within tolerance."""
    models = make_models(pools["bfloat16"], tiny_paths, setup)
    for seed in range(GEMMA_SEEDS + 1 if setup == "strong_gemma" else 3):
        ref, fast = both(models, ALL_METHODS, sp(seed))
        assert [f.text for f in fast[:2]] == [r.text for r in ref[:2]], seed
        for r, f in zip(ref, fast):
            assert f.counts.strong_tokens > 0
            if f.text == r.text and r.score is not None:
                n = sum(sequence_logprob(g, PROMPT, r.text, r.eos)[1] for g in (models.tuned, models.untuned))
                assert f.score == pytest.approx(r.score, abs=PER_TOKEN * n), r.label


@pytest.fixture(scope="module")
def adapter_dir(tiny_paths, tmp_path_factory):
    """A LoRA adapter on the tiny tuned guide, with random (not zero) B so it changes the scores."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_paths["tuned"]))
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False
    )
    out = tmp_path_factory.mktemp("adapter")
    torch.manual_seed(0)
    get_peft_model(base, config).save_pretrained(str(out))
    return out


@pytest.mark.parametrize("dtype", MODES)
def test_adapter_guides_in_the_mode(tiny_paths, adapter_dir, dtype):
    """LoRA guides (the sentiment presets): adapter on and off both within tolerance of float32."""
    source, text = str(tiny_paths["tuned"]), " red, I think"
    scores = {}
    for d in ("float32", dtype):
        adapted = load_adapted(source, str(adapter_dir), "cpu", d)
        for name, loaded in (("on", adapted), ("off", adapter_off(adapted))):
            scores[d, name] = sequence_logprob(Role(RoleSpec(source, "chat"), loaded), PROMPT, text, True)
    if dtype == "int8":
        lora = load_adapted(source, str(adapter_dir), "cpu", dtype).model
        kinds = {type(m).__name__ for n, m in lora.named_modules() if "lora_" in n}
        assert "Linear" in kinds and "Int8Linear" not in kinds  # the adapter stays in float
    for name in ("on", "off"):
        (want, n), (got, _) = scores["float32", name], scores[dtype, name]
        assert abs(got - want) <= PER_TOKEN * n, name
    assert abs(scores[dtype, "on"][0] - scores[dtype, "off"][0]) > 10 * PER_TOKEN  # the adapter acts


def test_quantize_linears_counts(tiny_paths):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_paths["tuned"]))
    expected = sum(type(m) is torch.nn.Linear for m in model.modules())
    assert quantize_linears(model) == expected > 0
    assert quantize_linears(model) == 0  # nothing left to quantize


def test_precision_setting_is_checked(monkeypatch):
    assert Settings.from_env({"W2S_DTYPE": "int8"}).dtype == "int8"
    assert Settings.from_env({}).dtype is None
    with pytest.raises(ConfigError, match="W2S_DTYPE"):
        Settings.from_env({"W2S_DTYPE": "int4"})
    with pytest.raises(ModelLoadError, match="CPU only"):
        pick_dtype("cuda", "int8")
    assert pick_dtype("cpu", None) == torch.float32  # float32 stays the CPU default


def test_cli_dtype_flag(tiny_env):
    from w2s_app.cli import build_parser
    from w2s_app.commands.run_options import services

    args = build_parser().parse_args(["generate", "--prompt", "hi", "--dtype", "int8"])
    assert services(args).engines.pool.dtype == "int8"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--prompt", "hi", "--dtype", "int4"])
