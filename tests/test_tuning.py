"""tune-guide: DPO on a tiny model writes an adapter that loads and changes the guide's scores."""

from __future__ import annotations

import json
import os

import pytest

from tests.test_store import stored
from w2s_app.backends.local import load_model
from w2s_app.backends.roles import Role, RoleSpec
from w2s_app.cli import main
from w2s_app.engines.plain_scorer import sequence_logprob
from w2s_app.store import Store
from w2s_app.tuning.dpo import _batch
from w2s_app.tuning.preference_pairs import Pair, from_scored, from_votes
from w2s_app.tuning.rewards import load_reward, vader_negative, vader_positive
from w2s_app.tuning.sampling import Sample


def length_reward(prompt: str, text: str) -> float:
    """A reward for the tests: longer answers are better."""
    return float(len(text))


PAIRS = [
    Pair(f"Review {i}:", " A wonderful, moving film with a great cast.", " A dull, boring mess of a film.")
    for i in range(8)
]


def test_tune_guide_from_preferences_writes_a_working_adapter(tiny_paths, tmp_path, capsys):
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text("".join(json.dumps(vars(p)) + "\n" for p in PAIRS))
    out = tmp_path / "adapter"
    base = str(tiny_paths["tuned"])
    args = ["tune-guide", "--base", base, "--out", str(out), "--preferences", str(prefs), "--template",
            "{prompt}", "--epochs", "3", "--lr", "0.005", "--batch-size", "4", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.split("\nadapter written")[0])
    assert summary["pairs"] == 8 and summary["steps"] == 6
    assert summary["final_loss"] < summary["first_loss"]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["source"] == "preferences" and meta["base"] == base and "date" in meta
    # The adapter loads; the pair (adapter on vs off) now prefers the chosen answer to the rejected one.
    from peft import PeftModel

    loaded = load_model(base, device="cpu", dtype="float32")
    peft = PeftModel.from_pretrained(loaded.model, str(out)).eval()
    role = Role(RoleSpec(base, "{prompt}"), loaded)
    on, _ = sequence_logprob(role, "Review 0:", PAIRS[0].chosen, True)
    with peft.disable_adapter():
        off, _ = sequence_logprob(role, "Review 0:", PAIRS[0].chosen, True)
    assert abs(on - off) > 1e-3  # the pair's score is no longer zero
    worse_on, _ = sequence_logprob(role, "Review 0:", PAIRS[0].rejected, True)
    with peft.disable_adapter():
        worse_off, _ = sequence_logprob(role, "Review 0:", PAIRS[0].rejected, True)
    assert (on - off) > (worse_on - worse_off)


def test_from_votes_builds_exactly_the_expected_pairs(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'v.sqlite3'}")
    cid, gids = stored(store, texts=("first", "second", "third"))
    cid2, gids2 = stored(store, texts=("uno", "dos", "tres"))
    cid3, _ = stored(store)
    store.record_vote(cid, "a", gids[1])
    store.record_vote(cid2, "a", "tie")
    store.record_vote(cid3, "a", "all_bad")
    store.record_vote(cid2, "b", gids2[0])
    pairs = from_votes(store.frame("votes"), store.frame("generations"), store.frame("comparisons"))
    assert sorted((p.chosen, p.rejected) for p in pairs) == [
        ("second", "first"),
        ("second", "third"),
        ("uno", "dos"),
        ("uno", "tres"),
    ]
    assert (
        from_votes(store.frame("votes"), store.frame("generations"), store.frame("comparisons"), "other")
        == []
    )


def test_from_scored_pairs_the_better_half_with_the_worse_half():
    answers = [Sample("a", True), Sample("b", False), Sample("c", True), Sample("d", True), Sample("e", True)]
    pairs = from_scored({"p": answers}, {"p": [0.1, 0.9, 0.5, 0.5, -0.2]})
    # Ranked b, c, d, a, e: the top two (b, c) each over the bottom two (a, e); d sits in the middle.
    assert sorted((x.chosen, x.rejected) for x in pairs) == [("b", "a"), ("b", "e"), ("c", "a"), ("c", "e")]
    assert {(x.chosen, x.chosen_finished) for x in pairs} == {("b", False), ("c", True)}
    # Equal scores make no pair.
    assert from_scored({"p": answers[:2]}, {"p": [0.3, 0.3]}) == []


def test_eos_is_trained_only_for_answers_that_ended(tiny_paths):
    base = str(tiny_paths["tuned"])
    role = Role(RoleSpec(base, "{prompt}"), load_model(base, device="cpu", dtype="float32"))
    pair = Pair("Review:", " good film", " bad film", chosen_finished=True, rejected_finished=False)
    n = len(role.response_ids(" good film"))
    ids, _, mask = _batch(role, [pair], "chosen", 16)
    assert mask.sum() == n + 1 and ids[0, int(mask[0].nonzero().max())] == role.eos_id
    _, _, mask = _batch(role, [pair], "rejected", 16)
    assert mask.sum() == len(role.response_ids(" bad film"))
    # An answer longer than the token limit is cut there and gets no end token either.
    _, _, mask = _batch(role, [pair], "chosen", n - 1)
    assert mask.sum() == n - 1


def test_reward_source_and_bad_input(tiny_paths, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Once upon a time\nThe film was\n")
    out = tmp_path / "a"
    base = str(tiny_paths["tuned"])
    common = ["tune-guide", "--base", base, "--out", str(out), "--template", "{prompt}", "--device", "cpu"]
    assert main([*common, "--reward", "tests.test_tuning:length_reward", "--prompts", str(prompts),
                 "--samples", "3", "--max-tokens", "12"]) == 0  # fmt: skip
    assert json.loads((out / "metadata.json").read_text())["source"] == "reward"
    # Answers sampled from another model (the strong one), cut at a stop text; the pairs are kept.
    strong = str(tiny_paths["strong_smol"])
    assert main([*common, "--reward", "tests.test_tuning:length_reward", "--prompts", str(prompts),
                 "--samples", "4", "--max-tokens", "12", "--sample-from", strong, "--stop", "e"]) == 0  # fmt: skip
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["sampled_from"] == strong and meta["stop"] == ["e"] and meta["sampling_seconds"] > 0
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == meta["pairs"] > 0
    assert all("e" not in p["chosen"] + p["rejected"] for p in pairs)
    assert all(len(p["chosen"]) > len(p["rejected"]) for p in pairs)  # the reward's order
    capsys.readouterr()
    assert main([*common, "--reward", "vader"]) == 2
    assert "--reward needs --prompts" in capsys.readouterr().err
    assert main([*common]) == 2
    assert "exactly one data source" in capsys.readouterr().err
    assert main([*common, "--reward", "nope"]) == 2


def test_vader_rewards():
    assert vader_positive("", "A wonderful, lovely film.") > 0 > vader_positive("", "A terrible, awful film.")
    assert vader_negative("", "awful") > 0
    assert load_reward("vader") is vader_positive
    with pytest.raises(ValueError, match="unknown reward"):
        load_reward("sentiment")


def test_adapter_pair_in_a_preset_shares_weights(tiny_paths, tmp_path, monkeypatch, capsys):
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text("".join(json.dumps(vars(p)) + "\n" for p in PAIRS))
    adapter = tmp_path / "adapter"
    base = str(tiny_paths["tuned"])
    assert main(["tune-guide", "--base", base, "--out", str(adapter), "--preferences", str(prefs), "--template",
                 "{prompt}", "--lr", "0.005", "--epochs", "2", "--device", "cpu"]) == 0  # fmt: skip
    presets = tmp_path / "p.toml"
    presets.write_text(
        f'[pair]\n[pair.strong]\nsource = "{tiny_paths["strong_smol"]}"\ntemplate = "{{prompt}}"\n'
        f'[pair.tuned]\nsource = "{base}"\ntemplate = "{{prompt}}"\nadapter = "{adapter}"\n'
        f'[pair.untuned]\nsource = "{base}"\ntemplate = "{{prompt}}"\nadapter = "{adapter}"\nuse_adapter = false\n'
    )
    monkeypatch.setenv("W2S_PRESETS", str(presets))
    monkeypatch.setenv("W2S_DATA_DIR", str(tmp_path / "data"))
    from tests.engines import compare
    from w2s_app.config import Settings
    from w2s_app.wiring import build_runner

    results = {}
    for engine in ("reference", "fast"):
        runner = build_runner(Settings.from_env({**os.environ, "W2S_ENGINE": engine}))
        models = runner.engines.load(runner.preset("pair")).models
        assert models.untuned.model.adapted is models.tuned.model  # one copy of the weights
        comp = compare(
            runner, "Review:", "pair", ["bon", "w2s"], {"max_new_tokens": 12, "l": 4, "n": 3, "seed": 1}
        )
        assert all(r.ok for r in comp.results), [r.error for r in comp.results]
        assert all(abs(r.score) > 1e-6 for r in comp.results)
        results[engine] = [(r.text, round(r.score, 3)) for r in comp.results]
    assert results["reference"] == results["fast"]


def test_evaluate_prints_one_row_per_method(tiny_env, capsys):
    prompts = tiny_env / "prompts.txt"
    prompts.write_text("The film was\nI thought\nIn the end\n")
    args = ["evaluate", "--preset", "tiny", "--prompts", str(prompts), "--reward", "tests.test_tuning:length_reward",
            "--methods", "baseline,bon,w2s", "--seeds", "2", "--json"]  # fmt: skip
    assert main(args) == 0
    table = json.loads(capsys.readouterr().out)["table"]
    assert [r["method"] for r in table] == ["baseline", "bon N4", "w2s W2 K2 L8"]
    for r in table:
        assert r["answers"] == 6 and r["lo"] <= r["reward"] <= r["hi"] and r["strong_tokens"] > 0
    assert main([*args[:-1]]) == 0  # the plain table prints too
    assert "reward" in capsys.readouterr().out
