"""EFT against a hand computation with beta != 0: per token, logits_S + beta * (log G+ - log G-).

The fast and the reference engines share `eft_logits`, so agreeing with each other proves nothing
about the formula; these tests compute it here, by hand, from the three models' raw logits.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests import engines
from w2s_app.contracts import SamplingParams
from w2s_app.contracts.seeds import method_seed, prompt_seed
from w2s_app.engines.eft_sampling import eft_logits
from w2s_app.engines.token_choice import choose_tokens
from w2s_app.search import run_methods

PROMPT = "Name a colour."


def test_eft_logits_match_the_formula_worked_by_hand():
    strong = torch.tensor([1.0, 2.0, 3.0])
    tuned = torch.tensor([0.0, 0.0, math.log(2.0)])  # log-softmax: -ln 4, -ln 4, -ln 2
    untuned = torch.tensor([5.0, 5.0, 5.0])  # log-softmax: -ln 3 everywhere
    beta = 2.0
    by_hand = [
        1.0 + beta * (-math.log(4) + math.log(3)),
        2.0 + beta * (-math.log(4) + math.log(3)),
        3.0 + beta * (-math.log(2) + math.log(3)),
    ]
    assert eft_logits([strong, tuned, untuned], beta).tolist() == pytest.approx(by_hand, abs=1e-6)
    # Guides with a larger vocabulary (padded rows) are cut to the shared part.
    wide = torch.cat([tuned, torch.tensor([9.0])])
    assert eft_logits([strong, wide, untuned], 0.0).tolist() == pytest.approx(strong.tolist())


@torch.inference_mode()
def hand_eft(models, beta: float, sp: SamplingParams) -> str:
    """EFT written out: the three models re-read prompt + answer every token, mixed with the formula."""
    roles = (models.strong, models.tuned, models.untuned)
    # The driver keys an independent-noise method by the prompt and the method's own parameters.
    seed = method_seed(prompt_seed(sp.seed, PROMPT), "eft", {"beta": beta})
    new: list[int] = []
    for pos in range(sp.max_new_tokens):
        raw = []
        for role in roles:
            ids = torch.tensor([role.prompt_ids(PROMPT) + new])
            raw.append(role.model(input_ids=ids).logits[0, -1].float())
        s, plus, minus = raw
        mixed = s + beta * (plus.log_softmax(-1) - minus.log_softmax(-1))
        if not models.strong.decode(new).strip():  # a blank answer may not end
            mixed[list(models.strong.stop_ids)] = float("-inf")
        (tok,) = choose_tokens(mixed.unsqueeze(0), [(seed, 0, pos)], sp.temperature, sp.top_p)
        if tok in models.strong.stop_ids:
            break
        new.append(tok)
    return models.strong.decode(new)


@pytest.mark.parametrize("make", [engines.reference, engines.fast])
def test_eft_answers_are_the_hand_computed_ones(same_tok, make):
    sp = SamplingParams(max_new_tokens=10, temperature=1.0, seed=11)
    for beta in (0.7, 3.0):
        (res,) = run_methods(make(same_tok), PROMPT, [("eft", {"beta": beta})], sp)
        assert res.ok, res.error
        assert res.text == hand_eft(same_tok, beta, sp)
    # beta matters: with the same noise (shared), a strong push from these guides changes the answer.
    shared = SamplingParams(max_new_tokens=10, temperature=1.0, seed=11, noise="shared")
    texts = {run_methods(make(same_tok), PROMPT, [("eft", {"beta": b})], shared)[0].text for b in (0.0, 3.0)}
    assert len(texts) == 2
