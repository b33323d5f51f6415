"""The guide-pair rank check (benchmarks/pair_reward_rank.py): its statistics on synthetic scores with a
known answer, and one small run of the tool on the real sentiment preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from benchmarks.pair_reward_rank import held_out
from benchmarks.rank_stats import bootstrap_mean, spearman, summarise, top_above_median
from w2s_app.config import Settings
from w2s_app.tuning.rewards import vader_negative

REPO = Path(__file__).resolve().parents[1]


def test_spearman_is_one_for_a_monotone_score_and_minus_one_reversed():
    scores = [0.3, -2.0, 1.5, 0.9, 4.0]
    rewards = [np.exp(s) for s in scores]  # any increasing function: same order
    assert spearman(scores, rewards) == pytest.approx(1.0)
    assert spearman(scores, [-r for r in rewards]) == pytest.approx(-1.0)


def test_spearman_agrees_with_scipy_with_ties_and_is_none_without_an_order():
    rng = np.random.default_rng(1)
    for _ in range(20):
        s = rng.normal(size=8)
        r = rng.integers(0, 3, size=8).astype(float)  # ties, as VADER's many 0.0
        if np.ptp(r) == 0:
            continue
        assert spearman(s, r) == pytest.approx(spearmanr(s, r).statistic)
    assert spearman([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]) is None  # all neutral: nothing to rank
    assert spearman([1.0, 1.0], [0.0, 1.0]) is None
    with pytest.raises(ValueError):
        spearman([1.0, 2.0], [1.0])


def test_the_pick_is_the_first_best_score_as_bon_breaks_ties():
    assert top_above_median([2.0, 2.0, 0.0], [0.9, -0.5, 0.0])  # index 0 wins the tie
    assert not top_above_median([2.0, 2.0, 0.0], [-0.5, 0.9, 0.0])
    assert not top_above_median([0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0])  # at the median is not above


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [0.1, 0.5, -0.2, 0.4, 0.3, 0.0]
    mean, lo, hi = bootstrap_mean(values, reps=1000, seed=3)
    assert mean == pytest.approx(np.mean(values))
    assert lo < mean < hi
    assert bootstrap_mean(values, reps=1000, seed=3) == (mean, lo, hi)
    assert bootstrap_mean([0.7]) == (0.7, 0.7, 0.7)


def test_summary_of_a_perfect_and_a_reversed_pair():
    groups = [([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.5, 0.9])] * 5
    perfect = summarise(groups, reps=200)
    assert perfect["openings"] == perfect["openings_ranked"] == 5
    assert perfect["candidates"] == 4
    assert perfect["spearman_mean"] == perfect["spearman_lo"] == perfect["spearman_hi"] == pytest.approx(1.0)
    assert perfect["spearman_pooled"] == pytest.approx(1.0)
    assert perfect["top_above_median"] == 1.0
    reversed_ = summarise([(s, [-x for x in r]) for s, r in groups], reps=200)
    assert reversed_["spearman_mean"] == pytest.approx(-1.0)
    assert reversed_["top_above_median"] == 0.0


def test_openings_with_one_reward_are_counted_but_not_ranked():
    out = summarise([([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]), ([1.0, 2.0, 3.0], [0.0, 0.2, 0.4])], reps=100)
    assert out["openings"] == 2 and out["openings_ranked"] == 1
    assert out["spearman_mean"] == pytest.approx(1.0)
    assert out["top_above_median"] == 0.5


def test_an_independent_pair_gets_an_interval_covering_zero_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    sims, covered = 300, 0
    for i in range(sims):
        groups = [(rng.normal(size=8), rng.normal(size=8)) for _ in range(16)]
        out = summarise(groups, reps=500, seed=i)
        covered += out["spearman_lo"] <= 0.0 <= out["spearman_hi"]
    # 95% nominal; a percentile bootstrap over 16 openings runs a little narrow (about 93%).
    assert 0.88 <= covered / sims <= 0.99


def test_a_pair_that_ranks_the_rewards_way_is_told_apart_from_chance():
    rng = np.random.default_rng(5)
    groups = []
    for _ in range(16):
        s = rng.normal(size=8)
        groups.append((s, 0.6 * s + 0.8 * rng.normal(size=8)))  # correlation 0.6 per candidate
    out = summarise(groups, reps=1000)
    assert 0.0 < out["spearman_lo"] < out["spearman_mean"] < out["spearman_hi"]
    assert 0.3 < out["spearman_mean"] < 0.8
    assert out["top_above_median"] > 0.5


def test_only_held_out_openings_are_measured(tmp_path):
    preset = Settings.from_env().preset("sentiment-negative")
    chosen = held_out(REPO / "assets" / "prompts" / "reviews_eval.txt", 3, preset)
    assert len(chosen) == 3
    pool = (REPO / "assets" / "prompts" / "reviews_pool.txt").read_text().splitlines()
    leaky = tmp_path / "leaky.txt"
    leaky.write_text(chosen[0] + "\n" + pool[0] + "\n")
    with pytest.raises(SystemExit, match="pool"):
        held_out(leaky, 2, preset)
    with pytest.raises(SystemExit, match="only"):
        held_out(leaky, 5, preset)


@pytest.mark.slow
def test_the_tool_runs_end_to_end_on_the_sentiment_preset(tmp_path):
    # The real preset (GGUF strong model, adapter guide pair): 2 openings x 3 candidates, about 10 s.
    out_file = tmp_path / "rank.json"
    args = ["--preset", "sentiment-negative", "--openings", "2", "--candidates", "3", "--json", str(out_file)]
    env = {**os.environ, "W2S_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.pair_reward_rank", *args],
        capture_output=True, text=True, timeout=600, env=env, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(out_file.read_text())
    for field in ("spearman_mean", "spearman_lo", "spearman_hi", "spearman_pooled", "top_above_median",
                  "openings_ranked", "wall_seconds", "cpu", "command"):  # fmt: skip
        assert field in out
    assert out["preset"] == "sentiment-negative" and out["reward"] == "vader-negative"
    assert out["openings"] == 2 and out["candidates"] == 3
    eval_openings = (REPO / "assets" / "prompts" / "reviews_eval.txt").read_text().splitlines()[:2]
    assert [r["opening"] for r in out["rows"]] == eval_openings
    for row in out["rows"]:
        assert len(row["texts"]) == len(row["scores"]) == len(row["rewards"]) == 3
        assert row["rewards"] == [vader_negative(row["opening"], t) for t in row["texts"]]
        assert row["pick"] == int(np.argmax(row["scores"]))  # bon's winner is the best-scored candidate
    lines = proc.stdout.strip().splitlines()
    assert json.loads(lines[0])["openings"] == 2
    assert lines[-1].startswith("| sentiment-negative | vader-negative | 2 (")
    assert "benchmarks.pair_reward_rank --preset sentiment-negative" in lines[-1]
