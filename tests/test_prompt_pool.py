"""Prompt pools and the preset keys that name them: sizes, no overlap with held-out prompts, defaults."""

from __future__ import annotations

import random

import pytest

from w2s_app.config import REPO, ConfigError, Settings, load_presets
from w2s_app.prompt_pool import examples_for, load_pool, pick, pool_for

PROMPTS = REPO / "assets" / "prompts"


@pytest.mark.parametrize("name", ["instructions.txt", "reviews_pool.txt"])
def test_pools_hold_at_least_100_distinct_prompts(name):
    pool = load_pool(PROMPTS / name)
    assert len(pool) >= 100 and len(set(pool)) == len(pool)


def test_review_pool_shares_nothing_with_the_held_out_or_training_openings():
    pool = {p.lower() for p in load_pool(PROMPTS / "reviews_pool.txt")}
    for held in ("reviews_eval.txt", "reviews_train.txt"):
        assert not pool & {p.lower() for p in load_pool(PROMPTS / held)}, held


def test_every_builtin_preset_has_a_purpose_and_a_pool():
    presets = load_presets()
    for p in presets.values():
        assert p.purpose and "\n" not in p.purpose, p.name
        assert p.prompts is not None and p.prompts.is_file(), p.name
    assert presets["sentiment-positive"].prompts.name == "reviews_pool.txt"
    assert presets["sentiment-negative"].prompts.name == "reviews_pool.txt"
    assert presets["offline"].prompts.name == presets["api"].prompts.name == "instructions.txt"
    assert examples_for(presets["offline"])[0] == "Give three tips for staying healthy."
    assert len(examples_for(presets["sentiment-positive"])) == 8


def test_a_fresh_install_opens_on_sentiment_positive_unless_w2s_preset_says_otherwise():
    assert Settings.from_env({}).default_preset == "sentiment-positive"
    assert Settings.from_env({"W2S_PRESET": "offline"}).default_preset == "offline"


def test_a_missing_pool_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "presets.toml"
    roles = "".join(f'[x.{r}]\nsource = "m"\ntemplate = "chat"\n' for r in ("strong", "tuned", "untuned"))
    bad.write_text(f'[x]\nprompts = "assets/prompts/nope.txt"\n{roles}')
    with pytest.raises(ConfigError, match=r"prompts file .*nope\.txt does not exist"):
        load_presets([bad])


def test_pick_never_repeats_the_prompt_on_screen():
    pool = pool_for(load_presets()["offline"])
    rng = random.Random(0)
    assert all(pick(pool, pool[0], rng) != pool[0] for _ in range(200))
    assert pick(["only"], "only") == "only"
    with pytest.raises(ValueError, match="empty"):
        pick([])
