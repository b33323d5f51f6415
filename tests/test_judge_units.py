"""The judge without a server: strict parsing, the versioned rubric, both orders, retries, twins, the vote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.judge_support import FakeJudge, first_position, garbage, prefers, reply, shown
from w2s_app.judge.ask import JudgeInputError, parse_since
from w2s_app.judge.parse import ParseError, parse_verdict
from w2s_app.judge.prompt import PROMPT_VERSION, RUBRICS, load_rubric
from w2s_app.judge.protocol import copeland_choice, judge_comparison, pair_verdict
from w2s_app.store.judgements import JudgeItem

RUBRIC = load_rubric()


def item(*texts: str, cid: int = 7) -> JudgeItem:
    return JudgeItem(cid, "Give three tips for staying healthy.", "offline",
                     [(100 + i, f"m{i}", t) for i, t in enumerate(texts)])  # fmt: skip


@pytest.mark.parametrize(
    "text, verdict",
    [
        ('{"reason": "B lists three tips.", "verdict": "B"}', "B"),
        ('  {"verdict": "a", "reason": "x"}\n', "A"),
        ('```json\n{"reason": "same", "verdict": "Tie"}\n```', "tie"),
        ('<think>hmm, A or B</think>\n{"reason": "r", "verdict": "B"}', "B"),
    ],
)
def test_a_verdict_is_one_json_object_with_a_reason(text, verdict):
    assert parse_verdict(text).verdict == verdict


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Verdict: A",
        "I think answer A is better.",
        '{"reason": "r", "verdict": "A"} and also {"verdict": "B"}',
        '{"reason": "r", "verdict": "A or B"}',
        '{"reason": "", "verdict": "A"}',
        '{"reason": "r", "verdict": "A", "confidence": 0.9}',
        '{"verdict": "A"}',
        '["A"]',
        '{"reason": "r", "verdict": "C"}',
    ],
)
def test_anything_else_is_unparsable_never_guessed(text):
    with pytest.raises(ParseError):
        parse_verdict(text)


def test_the_rubric_is_a_versioned_file_and_answers_go_in_verbatim():
    assert (RUBRICS / f"{PROMPT_VERSION}.md").is_file() and RUBRIC.version == PROMPT_VERSION
    messages = RUBRIC.messages("Q with {answer_b} inside", "first {purpose}", "second", "Reviews, positive")
    user = messages[1]["content"]
    assert messages[0]["role"] == "system" and "Reviews, positive" in user
    assert "Q with {answer_b} inside" in user and "first {purpose}" in user  # not substituted twice
    assert shown(messages) == {"A": "first {purpose}", "B": "second"}
    assert '"verdict"' in RUBRIC.retry
    with pytest.raises(ValueError, match="unknown judge prompt version"):
        load_rubric("../secrets")


def test_a_judge_that_always_picks_the_first_position_gives_ties_not_wins():
    judge = FakeJudge(first_position)
    out = judge_comparison(judge, RUBRIC, item("one", "two", "three"))
    assert out.choice == "tie"
    assert [p.verdict for p in out.pairs] == ["tie"] * 3 and {p.status for p in out.pairs} == {"judged"}
    assert len(judge.requests) == 6
    for p in out.pairs:  # each pair was shown both ways round
        assert [c["shown"] for c in p.calls] == [[p.first_id, p.second_id], [p.second_id, p.first_id]]
        assert [c["verdict"] for c in p.calls] == ["A", "A"]


def test_a_consistent_judge_picks_the_better_answer_whatever_the_order():
    for cid in range(6):  # different comparisons: different shuffles
        out = judge_comparison(FakeJudge(prefers("good")), RUBRIC, item("meh", "good tips", "so-so", cid=cid))
        assert out.choice == 101
        wins = {(p.first_id, p.second_id): p.verdict for p in out.pairs}
        for (first, second), verdict in wins.items():
            if 101 in (first, second):
                assert verdict == ("first" if first == 101 else "second")
            else:
                assert verdict == "tie"


def test_the_shuffle_is_keyed_so_a_rerun_asks_the_same_way():
    one = FakeJudge(first_position)
    two = FakeJudge(first_position)
    judge_comparison(one, RUBRIC, item("a", "b", "c"), key="judge:x")
    judge_comparison(two, RUBRIC, item("a", "b", "c"), key="judge:x")
    assert [shown(m) for m in one.requests] == [shown(m) for m in two.requests]


def test_an_unreadable_reply_is_asked_again_once():
    replies = iter([garbage(None), reply("B"), reply("A")])
    judge = FakeJudge(lambda m: next(replies))
    out = judge_comparison(judge, RUBRIC, item("x", "y"))
    pair = out.pairs[0]
    assert pair.status == "judged" and len(pair.calls[0]["replies"]) == 2 and pair.calls[0]["errors"]
    retry = judge.requests[1]
    assert retry[-2] == {"role": "assistant", "content": garbage(None)}
    assert retry[-1]["content"] == RUBRIC.retry
    assert pair.prompt_tokens == 300 and pair.completion_tokens == 30  # every request is counted


def test_unreadable_twice_is_a_recorded_failure_and_nothing_more_is_asked():
    judge = FakeJudge(garbage)
    out = judge_comparison(judge, RUBRIC, item("x", "y", "z"))
    assert out.choice is None
    assert len(out.pairs) == 1 and out.pairs[0].status == "unparsable" and out.pairs[0].verdict is None
    assert len(judge.requests) == 2 and out.pairs[0].calls[0]["replies"] == [garbage(None)] * 2


def test_twins_are_shown_once_and_share_their_verdict():
    judge = FakeJudge(prefers("good"))
    out = judge_comparison(judge, RUBRIC, item("good answer", "bad answer", "  good   answer\n"))
    assert len(judge.requests) == 2  # one pair of distinct texts, both orders
    rows = {(p.first_id, p.second_id): (p.verdict, p.status) for p in out.pairs}
    assert rows[(100, 102)] == ("tie", "identical")
    copied = [(k, v) for k, v in rows.items() if v[1] == "copied"]
    assert len(copied) == 1 and 102 in copied[0][0] and 101 in copied[0][0]
    assert out.choice == 100  # the first of the twin group: the vote counts for both
    all_twins = judge_comparison(FakeJudge(garbage), RUBRIC, item("same", "same"))
    assert all_twins.choice == "tie" and [p.status for p in all_twins.pairs] == ["identical"]


def test_pair_verdicts_and_the_copeland_vote():
    assert pair_verdict("A", "B") == "first" and pair_verdict("B", "A") == "second"
    assert pair_verdict("A", "A") == "tie" and pair_verdict("tie", "B") == "tie"
    # A beats B, B beats C, C beats A: nobody is best.
    assert copeland_choice([1, 2, 3], {(1, 2): "first", (2, 3): "first", (3, 1): "first"}) == "tie"
    assert copeland_choice([1, 2, 3], {(1, 2): "first", (1, 3): "tie", (2, 3): "tie"}) == 1
    assert copeland_choice([1, 2, 3], {(1, 2): "tie", (1, 3): "first", (2, 3): "first"}) == "tie"


def test_since_takes_dates_times_and_ages():
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2026-02-01") == datetime(2026, 2, 1, tzinfo=UTC)
    assert parse_since("2026-02-01T10:00+02:00") == datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
    assert parse_since(None) is None and parse_since(" ") is None
    for bad in ("yesterday", "7 weeks", "2026-13-01", "-3d"):
        with pytest.raises(JudgeInputError, match="--since must be"):
            parse_since(bad)


def test_the_commands_are_part_of_the_main_cli(tiny_env, capsys):
    from w2s_app.cli import build_parser, main

    parser = build_parser()
    assert main(["judge", "--preset", "offline", "--judge-model", "m", "--limit", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --limit must be at least 1"
    assert parser.parse_args(["leaderboard", "--source", "judge:m"]).source == "judge:m"
    assert parser.parse_args(["agreement", "--judge", "m"]).judge == "m"
