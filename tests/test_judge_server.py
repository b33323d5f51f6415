"""The judge end to end against a real llama.cpp server (the offline SmolLM2 GGUF) through the command line.

SmolLM2-135M judges poorly (it tends to name one position whatever the answers), which is what
these tests need: they check plumbing, the both-orders rule on a real model, strict parsing of
real replies, resumption, storage, and that no judge vote reaches people's board.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.api_support import free_port, start_llama_server, stop
from tests.test_store import comparison
from w2s_app.judge.prompt import PROMPT_VERSION
from w2s_app.leaderboard.cache import BoardView, build_board
from w2s_app.store import Store

pytestmark = pytest.mark.slow  # a real llama.cpp server (still runs in CI)

MODEL = "smollm2-135m"
JUDGE = f"judge:{MODEL}"
ROOT = Path(__file__).resolve().parents[1]
TOPICS = ["staying healthy", "saving money", "learning a language", "sleeping well", "writing clearly"]


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> str:
    """The llama.cpp OpenAI-compatible server with SmolLM2 (stopped at the end)."""
    url, proc = start_llama_server(tmp_path_factory.mktemp("llama") / "server.log", logits_all=False)
    yield url + "/v1"
    stop(proc)


def judge_cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m w2s_app judge|agreement ...` on the data dir `data`."""
    env = {**os.environ, "W2S_DATA_DIR": str(data), "OPENAI_API_KEY": ""}
    return subprocess.run(
        [sys.executable, "-m", "w2s_app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


# Stored comparisons; each judge request reads a ~300-token rubric (~2 s on one core): 12 requests
# (one comparison of three distinct answers, three of twins), the first run 10 of them.
ARENA = 4
FIRST = 3  # the first run's --limit; the second run resumes with the rest


def pairs(i: int) -> int:
    """Pairs the judge asks about in comparison i: three distinct answers in one of four, else twins."""
    return 3 if i % 4 == 0 else 1


def stored_arena(data: Path, n: int = ARENA) -> tuple[Store, list[list[int]]]:
    """n comparisons of the offline preset with three answers each; a person always picks the w2s one.

    Where `pairs(i)` is 1, baseline and w2s wrote the same text (twins): the judge sees two answers,
    one pair; else three distinct answers, three pairs. Each pair is asked both ways.
    """
    store = Store(f"sqlite:///{data / 'w2s.sqlite3'}")
    gids = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        cid = store.create_comparison(f"Give three tips for {topic}.", "offline", {}, "alice", {})
        texts = (
            f"Tips for {topic}: be patient.",
            f"1. Plan ahead for {topic}. 2. Practise a little every day. 3. Ask for help.",
            f"{topic.capitalize()} is a thing people do."
            if pairs(i) == 3
            else f"Tips for {topic}: be patient.",
        )
        ids = store.finish_comparison(cid, comparison(texts), [i % 3, (i + 1) % 3, (i + 2) % 3])
        store.record_vote(cid, "person", ids[2])
        gids.append(ids)
    return store, gids


def in_process(capsys, *args: str) -> tuple[int, str]:
    """`python -m w2s_app ...` run by main() in this process: (exit code, stdout)."""
    from w2s_app.cli import main

    code = main(list(args))
    return code, capsys.readouterr().out


def test_judge_runs_end_to_end_resumes_and_stays_out_of_peoples_board(llama, tmp_path, monkeypatch, capsys):
    store, _ = stored_arena(tmp_path)
    people_before = build_board(store, BoardView("offline"))
    args = [
        "judge",
        "--preset",
        "offline",
        "--judge-base",
        llama,
        "--judge-model",
        MODEL,
        "--no-progress",
        "--json",
    ]
    first = judge_cli(tmp_path, *args, "--limit", str(FIRST), "--concurrency", "2")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["todo"] == FIRST and report["judged"] + report["failed"] == FIRST and report["errors"] == 0
    # Comparisons are judged in id order: every pair of each, both ways (a retry only adds calls).
    assert report["per_comparison"]["calls"] >= round(sum(2 * pairs(i) for i in range(FIRST)) / FIRST, 2)
    # The first run was the real command; the resumptions run in this process (same code, no start-up).
    monkeypatch.setenv("W2S_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "")
    code, out = in_process(capsys, *args)
    assert code == 0 and json.loads(out)["todo"] == ARENA - FIRST  # only what the first run left
    code, out = in_process(capsys, *args)
    assert code == 0 and json.loads(out)["todo"] == 0

    votes = store.frame("votes")
    judge_votes = votes[votes["voter_id"] == JUDGE]
    rows = store.judgement_frame(judge=JUDGE, with_calls=True)
    judged = rows[rows["vote_id"].notna()]
    assert len(judge_votes) == judged["comparison_id"].nunique() >= ARENA - 2  # a few may be unreadable
    assert (judged.groupby("comparison_id").size() == 3).all()  # every pair of every judged comparison
    assert {"judged", "identical", "copied"} <= set(judged["status"])
    judged = judged[judged["status"] == "judged"]  # asked, not copied from a twin
    assert set(rows["prompt_version"]) == {PROMPT_VERSION}
    assert (judged["prompt_tokens"] > 0).all() and (judged["completion_tokens"] > 0).all()
    assert (judged["seconds"] > 0).all()
    for calls, verdict in zip(judged["calls"], judged["verdict"], strict=True):
        assert len(calls) == 2 and all(c["replies"] for c in calls)
        assert calls[0]["shown"] == calls[1]["shown"][::-1]
        json.loads(calls[0]["replies"][-1])  # the raw reply is kept as the server sent it
        if calls[0]["verdict"] == calls[1]["verdict"] != "tie":
            assert verdict == "tie"  # the same position both times is a position preference, not a win

    people_after = build_board(store, BoardView("offline"))
    pd.testing.assert_frame_equal(people_before.table, people_after.table)
    judge_board = build_board(store, BoardView("offline", vote_source=JUDGE))
    assert judge_board.counts["votes"] == len(judge_votes)
    merged = people_after.table.merge(judge_board.table, on="entity", suffixes=("_people", "_judge"))
    assert len(merged) == 3 and not (merged["score_people"] == merged["score_judge"]).all()

    code, out = in_process(capsys, "agreement", "--preset", "offline", "--json")
    assert code == 0 and json.loads(out)["items"] == len(judge_votes)


def test_unreadable_replies_are_recorded_as_failures_with_the_raw_replies(
    llama, tmp_path, monkeypatch, capsys
):
    store, _ = stored_arena(tmp_path, n=2)  # twins: one pair each, asked once and retried once
    # main() in this process: the end-to-end test above runs the real command.
    monkeypatch.setenv("W2S_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "")
    # Without an enforced JSON schema this small model answers in prose: nothing can be read.
    code, out = in_process(capsys, "judge", "--preset", "offline", "--judge-base", llama, "--judge-model",
                           "plain-smol", "--response-format", "none", "--max-tokens", "24", "--no-progress",
                           "--json")  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["failed"] == 2 and report["judged"] == 0
    rows = store.judgement_frame(judge="judge:plain-smol", with_calls=True)
    assert len(rows) == 2 and set(rows["status"]) == {"unparsable"} and rows["verdict"].isna().all()
    for calls in rows["calls"]:
        assert len(calls) == 1 and len(calls[0]["replies"]) == 2 and len(calls[0]["errors"]) == 2
    assert not (store.frame("votes")["voter_id"] == "judge:plain-smol").any()
    # Recorded failures are not asked again without --retry-failed (no request is sent).
    code, again = in_process(capsys, "judge", "--preset", "offline", "--judge-base", llama, "--judge-model",
                             "plain-smol", "--response-format", "none", "--no-progress", "--json")  # fmt: skip
    assert code == 0 and json.loads(again)["todo"] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--preset", "offline", "--since", "last tuesday"], "--since must be"),
        (["--preset", "offline", "--judge-base", "ftp://x"], "--judge-base must be an http(s) URL"),
        (["--preset", "offline", "--limit", "0"], "--limit must be at least 1"),
        (
            ["--preset", "offline", "--judge-base", "http://127.0.0.1:{port}/v1"],
            "cannot reach the judge server",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    # In this process (an exception escaping main would fail the test): the end-to-end test above
    # runs the real command.
    from w2s_app.cli import main

    monkeypatch.setenv("W2S_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "")
    args = [a.replace("{port}", str(free_port())) for a in args]
    base = [] if "--judge-base" in args else ["--judge-base", "http://127.0.0.1:9/v1"]
    code = main(["judge", "--judge-model", MODEL, *base, *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1


def test_the_history_tab_call_judges_and_reports_in_one_message(llama, tmp_path, monkeypatch):
    from w2s_app.config import Settings
    from w2s_app.judge import judge_now

    monkeypatch.setenv("W2S_DATA_DIR", str(tmp_path))
    store, _ = stored_arena(tmp_path, n=2)
    seen = []
    message = judge_now(
        store,
        Settings.from_env(),
        "offline",
        llama,
        MODEL,
        limit=1,
        on_progress=lambda d, t: seen.append((d, t)),
    )
    assert message.startswith(f"{JUDGE} (prompt {PROMPT_VERSION}): judged 1 of 1") and seen == [(1, 1)]
    assert judge_now(store, Settings.from_env(), "nope", llama, MODEL).startswith(
        "error: unknown preset 'nope'"
    )
    down = judge_now(store, Settings.from_env(), "offline", f"http://127.0.0.1:{free_port()}/v1", MODEL)
    assert down.startswith("error: cannot reach the judge server")
