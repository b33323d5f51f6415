"""The strict reading of a judge's reply: one JSON object with a reason and a verdict, or an error.

Accepted: the whole reply is one JSON object (optionally inside one ```json fence, optionally after
a reasoning model's <think>...</think> block) with exactly the keys "reason" (a non-empty string)
and "verdict" ("A", "B" or "tie", any letter case). Anything else is unparsable: nothing is
guessed from free text, so "Answer A is better" is not a verdict.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

VERDICTS = {"a": "A", "b": "B", "tie": "tie"}
_THINK = re.compile(r"^\s*<think>.*?</think>", re.S)
_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```$", re.S)


class ParseError(ValueError):
    """The reply is not a readable verdict; the message says why (stored with the reply)."""


@dataclass(frozen=True)
class Verdict:
    """A readable reply: which answer is better (A, B or tie) and why."""

    verdict: str
    reason: str


def parse_verdict(reply: str | None) -> Verdict:
    """The verdict of a reply, or ParseError."""
    text = _THINK.sub("", reply or "").strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if not text:
        raise ParseError("empty reply")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not one JSON object ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise ParseError(f"a JSON {type(obj).__name__}, not an object")
    if set(obj) != {"reason", "verdict"}:
        raise ParseError(f"keys must be reason and verdict, got {sorted(obj)}")
    verdict, reason = obj["verdict"], obj["reason"]
    if not isinstance(verdict, str) or verdict.strip().lower() not in VERDICTS:
        raise ParseError(f"verdict must be A, B or tie, got {verdict!r}"[:120])
    if not isinstance(reason, str) or not reason.strip():
        raise ParseError("reason must be a non-empty string")
    return Verdict(VERDICTS[verdict.strip().lower()], reason.strip())
