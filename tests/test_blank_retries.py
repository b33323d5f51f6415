"""An answer that comes out blank is drawn again with fresh keyed noise, at most BLANK_RETRIES times.

The rule is written once (contracts.stops.retry_blank); these tests check it alone and through the
API engine, whose retries ask the server again only for the streams that came out blank.
"""

from __future__ import annotations

from types import SimpleNamespace

from w2s_app.backends.api_http import ApiError, Usage
from w2s_app.backends.openai_api import Choice
from w2s_app.backends.roles import ApiRole, Models, RoleSpec
from w2s_app.contracts import ROOT, SampleRequest, SamplingParams
from w2s_app.contracts.stops import BLANK_RETRIES, retry_blank, retry_slot
from w2s_app.engines.api_engine import ApiEngine, api_seed


def test_the_first_answer_that_is_not_blank_stands():
    tried: list[int] = []

    def attempt(n: int) -> str:
        tried.append(n)
        return "" if n == 0 else f"text {n}"

    assert retry_blank(attempt, lambda text: not text) == "text 1"
    assert tried == [0, 1]


def test_retries_stop_after_blank_retries_and_the_last_result_stands():
    tried: list[int] = []

    def attempt(n: int) -> str:
        tried.append(n)
        return f" {n} "

    assert retry_blank(attempt, lambda text: True) == f" {BLANK_RETRIES} "
    assert tried == list(range(1 + BLANK_RETRIES))


def test_each_attempt_draws_other_noise():
    slots = {retry_slot(5, n) for n in range(1 + BLANK_RETRIES)}
    assert len(slots) == 1 + BLANK_RETRIES and retry_slot(5, 0) == 5


class ScriptedClient:
    """Stands for the API client: answers each completions call from a script, recording the seeds."""

    def __init__(self, replies: list[list[Choice]]) -> None:
        self.config = SimpleNamespace(model="m")
        self.server = SimpleNamespace(chat_only=set())
        self.replies = replies
        self.seeds: list[list[int]] = []

    def complete(self, prompts, seeds, *args) -> tuple[list[Choice], Usage]:
        self.seeds.append(list(seeds))
        if not self.replies:
            raise ApiError("the server is gone", Usage(calls=1))
        choices = self.replies.pop(0)
        assert len(choices) == len(prompts)
        return choices, Usage(calls=1, completion_tokens=sum(c.tokens for c in choices))


def _engine(client: ScriptedClient) -> ApiEngine:
    role = ApiRole(RoleSpec("api", "Q: {prompt}\nA:", stop=("\nQuestion:",)), client)
    return ApiEngine(Models(role, None, None), None)


def test_the_api_engine_asks_again_only_for_the_blank_streams():
    client = ScriptedClient(
        [
            # Stream 0 ends blank; stream 1 meets a stop string before any text; stream 2 answers.
            [Choice("  ", "stop", 2), Choice("\nQuestion: why?", "length", 6), Choice(" Paris.", "stop", 3)],
            [Choice("", "stop", 1), Choice(" Rome.", "stop", 3)],
            [Choice(" Oslo.", "stop", 3)],
        ]
    )
    sp = SamplingParams(max_new_tokens=32, seed=7)
    ans = _engine(client).sample("capital?", sp, SampleRequest((ROOT,) * 3, (0, 1, 2), 32))
    assert ans.error is None
    assert [s.text for s in ans.value] == [" Oslo.", " Rome.", " Paris."]
    assert client.seeds == [
        [api_seed(7, slot, 0) for slot in (0, 1, 2)],
        [api_seed(7, retry_slot(slot, 1), 0) for slot in (0, 1)],
        [api_seed(7, retry_slot(0, 2), 0)],
    ]
    assert ans.counts.api_calls == 3 and ans.counts.completion_tokens == 2 + 6 + 3 + 1 + 3 + 3


def test_the_api_engine_keeps_a_stream_blank_after_every_retry():
    client = ScriptedClient([[Choice("", "stop", 1)] for _ in range(1 + BLANK_RETRIES)])
    sp = SamplingParams(max_new_tokens=32, seed=1)
    ans = _engine(client).sample("hi", sp, SampleRequest((ROOT,), (4,), 32))
    assert ans.error is None and ans.value[0].text == "" and ans.value[0].done
    assert len(client.seeds) == 1 + BLANK_RETRIES and not client.replies


def test_a_failed_retry_is_an_error_that_keeps_the_cost_of_every_call():
    client = ScriptedClient([[Choice("", "stop", 1)]])
    sp = SamplingParams(max_new_tokens=32, seed=1)
    ans = _engine(client).sample("hi", sp, SampleRequest((ROOT,), (0,), 32))
    assert isinstance(ans.error, ApiError) and ans.counts.api_calls == 2
