"""generate -> (vote) -> export -> leaderboard through the CLI, on a real SQLite file."""

from __future__ import annotations

import json

import pandas as pd

from w2s_app.cli import main
from w2s_app.config import Settings
from w2s_app.store import Store


def test_generate_export_leaderboard(tiny_env, capsys):
    for seed in (1, 2):
        assert (
            main(["generate", "--preset", "tiny", "--prompt", f"Say {seed}.", "--seed", str(seed), "--json"])
            == 0
        )
    store = Store.from_settings(Settings.from_env())
    comps = store.frame("comparisons")
    assert list(comps["status"]) == ["done", "done"]
    gens = store.frame("generations")
    assert len(gens) == 6 and set(gens["label"]) == {"baseline", "bon N4", "w2s W2 K2 L8"}
    w2s = gens[gens["label"] == "w2s W2 K2 L8"]
    for cid, gid in zip(w2s["comparison_id"], w2s["id"], strict=True):
        store.record_vote(int(cid), "voter-1", int(gid))
    out = tiny_env / "gens.parquet"
    assert main(["export", "--what", "generations", "--format", "parquet", "--out", str(out)]) == 0
    assert len(pd.read_parquet(out)) == 6
    capsys.readouterr()
    assert main(["leaderboard", "--preset", "tiny", "--json"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["counts"]["votes"] == 2
    assert board["table"][0]["entity"] == "w2s W2 K2 L8" and board["table"][0]["wins"] == 2
