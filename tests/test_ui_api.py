"""The app end to end through gradio_client: compare, vote, leaderboard, export, rows in the database."""

from __future__ import annotations

import sqlite3
import time

import pandas as pd
import pytest
from gradio_client import Client


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


@pytest.fixture(scope="module")
def token(client):
    """A voter token the server issued (scripts get one from /token, browsers on page load)."""
    return client.predict(api_name="/token")


def board_after(client, votes: int, timeout: float = 60) -> dict:
    """The cached leaderboard once it counts `votes` blind votes (it refreshes in the background)."""
    deadline = time.time() + timeout
    while True:
        board = client.predict("tiny", api_name="/leaderboard")
        if board["counts"]["votes"] >= votes or time.time() > deadline:
            return board
        time.sleep(0.5)


def wins(board: dict) -> dict[str, float]:
    return {r["entity"]: r["wins"] for r in board["table"]}


def test_compare_vote_leaderboard_export(client, app_server, token):
    # The app is shared with the browser test: compare the leaderboard before and after this vote.
    before = client.predict("tiny", api_name="/leaderboard")
    out = client.predict("Name a colour.", token, "tiny", "baseline,bon,w2s", api_name="/compare")
    answers = out["answers"]
    assert sorted(a["answer"] for a in answers) == ["A", "B", "C"]
    assert all(a["status"] == "done" and a["text"] for a in answers)
    assert not any({"label", "method", "generation_id"} & set(a) for a in answers)  # blind until the vote
    with pytest.raises(Exception, match="too fast"):
        client.predict(out["comparison_id"], "A", token, api_name="/vote")
    time.sleep(1.2)
    res = client.predict(out["comparison_id"], "B", token, api_name="/vote")
    labels = {r["label"] for r in res["reveal"]}
    assert labels == {"baseline", "bon N4", "w2s W2 K2 L8"}
    w2s = next(r for r in res["reveal"] if r["method"] == "w2s")
    assert w2s["trace"] and w2s["score"] is not None
    with pytest.raises(Exception, match="already voted"):
        client.predict(out["comparison_id"], "A", token, api_name="/vote")
    board = board_after(client, before["counts"]["votes"] + 1)
    assert board["counts"]["votes"] == before["counts"]["votes"] + 1
    winner = next(r["label"] for r in res["reveal"] if r["answer"] == "B")
    assert wins(board)[winner] == wins(before).get(winner, 0) + 1
    path = client.predict("generations", "parquet", token, "", api_name="/export")
    frame = pd.read_parquet(path)
    with sqlite3.connect(app_server.db) as db:
        cid, status = db.execute(
            "select id, status from comparison where public_id=?", (out["comparison_id"],)
        ).fetchone()
        gens = db.execute("select count(*) from generation where comparison_id=?", (cid,)).fetchone()
        votes = db.execute("select choice from vote where comparison_id=?", (cid,)).fetchall()
    assert len(frame) == 3 and set(frame["comparison_id"]) == {cid}  # only this voter's voted comparison
    assert status == "done" and gens[0] == 3 and votes == [("generation",)]
    history = client.predict(1, "tiny", token, api_name="/history")
    assert history[0]["id"] == out["comparison_id"]


def test_failing_method_shows_its_error_and_others_answer(client, token):
    out = client.predict("Hi", token, "tiny-cross", "baseline,eft", api_name="/compare")
    by_status = {a["status"]: a for a in out["answers"]}
    assert by_status["done"]["text"]
    assert "after your vote" in by_status["failed"]["error"]  # the reason names the method: not yet
    time.sleep(1.2)
    res = client.predict(out["comparison_id"], "all_bad", token, api_name="/vote")
    assert "vocabulary" in next(r for r in res["reveal"] if r["status"] == "failed")["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "TOKEN", "tiny", "baseline"), "prompt is empty"),
        (("\u200b\ufeff\u2060", "TOKEN", "tiny", "baseline"), "prompt is empty"),  # zero-width only
        (("hi", "TOKEN", "nope", "baseline"), "unknown preset"),
        (("hi", "TOKEN", "tiny", "magic"), "unknown method"),
        (("hi", "", "tiny", "baseline"), "voter token is required"),
        (("hi", "made-up-voter", "tiny", "baseline"), "not a voter token issued by this server"),
    ],
)
def test_bad_compare_input_is_a_clear_error(client, token, args, message):
    args = tuple(token if a == "TOKEN" else a for a in args)
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name="/compare")


def test_vote_on_unknown_comparison(client, token):
    with pytest.raises(Exception, match="does not exist"):
        client.predict("AAAAAAAAAAAAAAAA", "A", token, api_name="/vote")


def test_vote_and_browsing_do_not_wait_behind_a_running_comparison(client, token):
    from gradio_client.utils import Status

    first = client.predict("Say hi.", token, "tiny", "baseline", api_name="/compare")
    time.sleep(1.2)  # votes open 1 s after the answers appear
    # A long comparison holds the one model slot; the calls below must answer while it still runs.
    job = client.submit("Tell a long story.", token, "tiny", "bon,w2s", 4, 4, 4, 16, 768, api_name="/compare")
    deadline = time.time() + 60
    while job.status().code != Status.PROCESSING and time.time() < deadline:
        time.sleep(0.1)
    assert job.status().code == Status.PROCESSING
    res = client.predict(first["comparison_id"], "tie", token, api_name="/vote")
    board = client.predict("tiny", api_name="/leaderboard")
    history = client.predict(1, "tiny", token, api_name="/history")
    assert not job.done(), (
        "vote or browsing waited for the comparison (or the comparison is too short to tell)"
    )
    assert res["recorded"] and board["counts"]["votes"] >= 1 and history
    long = job.result(timeout=600)
    assert all(a["status"] == "done" for a in long["answers"])


def test_compare_says_which_answers_are_twins_and_the_reveal_names_them(client):
    # Temperature 0: every method writes the same (greedy) text, so all three answers are twins.
    token = client.predict(api_name="/token")
    out = client.predict("Name a fruit.", token, "tiny", "baseline,bon,w2s", None, None, None, None, None,
                         0.0, api_name="/compare")  # fmt: skip
    assert out["twins"] == [["A", "B", "C"]]
    assert out["note"].startswith("A, B and C wrote the same answer")
    time.sleep(1.2)
    res = client.predict(out["comparison_id"], "C", token, api_name="/vote")
    assert {r["answer"]: sorted(r["twins"]) for r in res["reveal"]} == {"A": ["B", "C"], "B": ["A", "C"],
                                                                        "C": ["A", "B"]}  # fmt: skip
    alone = client.predict("Name a fruit.", token, "tiny", "baseline", api_name="/compare")
    assert alone["twins"] == [] and alone["note"] == ""
