"""Fake judges for the judge tests: scripted replies, no server."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable

from w2s_app.backends.api_http import ApiError
from w2s_app.judge.protocol import Reply

_ANSWER = re.compile(r"<answer_([AB])>\n(.*?)\n</answer_\1>", re.S)


def shown(messages: list[dict[str, str]]) -> dict[str, str]:
    """The texts shown as A and B in a judge request."""
    return dict(_ANSWER.findall(messages[1]["content"]))


def reply(verdict: str, reason: str = "because") -> str:
    return json.dumps({"reason": reason, "verdict": verdict})


class FakeJudge:
    """A judge whose reply is `rule(messages)`; counts requests (thread-safe)."""

    def __init__(self, rule: Callable[[list[dict[str, str]]], str], model: str = "fake-judge") -> None:
        self.rule = rule
        self.model = model
        self.requests: list[list[dict[str, str]]] = []
        self._lock = threading.Lock()

    def ask(self, messages: list[dict[str, str]]) -> Reply:
        with self._lock:
            self.requests.append(messages)
        return Reply(self.rule(messages), prompt_tokens=100, completion_tokens=10, seconds=0.01)


def first_position(messages) -> str:
    """Always the answer shown first."""
    return reply("A", "the first one")


def prefers(word: str) -> Callable:
    """The answer containing `word` wins; tie when both or neither do."""

    def rule(messages) -> str:
        ab = shown(messages)
        a, b = word in ab.get("A", ""), word in ab.get("B", "")
        return reply("A" if a and not b else "B" if b and not a else "tie")

    return rule


def garbage(messages) -> str:
    """Free text: never a verdict."""
    return "I think answer A is better."


def server_down(messages) -> str:
    raise ApiError("judge at http://127.0.0.1:9/v1: gave up after 5 tries: cannot connect")
