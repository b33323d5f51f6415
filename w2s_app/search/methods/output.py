"""What every method generator yields and returns: the one signature all methods share."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from ...contracts import EftRequest, Progress, SampleRequest, ScoreRequest, TraceStep

Request = SampleRequest | ScoreRequest | EftRequest | Progress
MethodGen = Generator[Request, Any, "MethodOutput"]


@dataclass
class MethodOutput:
    """A method's answer before the driver adds counts and timing."""

    text: str
    score: float | None
    eos: bool
    trace: list[TraceStep]


# What a method says when the strong model ended every try before writing anything (only a server
# can: local samplers never end a blank answer).
NO_ANSWER = "the strong model ended its answer before writing anything, on every try; an empty answer is not an answer"
