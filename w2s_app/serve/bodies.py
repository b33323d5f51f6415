"""Response bodies and stream chunks in the OpenAI format, plus the documented `w2s` extras."""

from __future__ import annotations

import json
from typing import Any

from .jobs import ChoiceAnswer


def usage(answers: list[ChoiceAnswer]) -> dict[str, Any]:
    """OpenAI usage (strong-model tokens) plus `search`: what the search spent to get there."""
    prompt = sum(a.prompt_tokens for a in answers)
    completion = sum(a.completion_tokens for a in answers)
    counts = [a.result.counts for a in answers]
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "search": {
            "strong_tokens": sum(c.strong_tokens for c in counts),
            "guide_tokens": sum(c.guide_tokens for c in counts),
            "api_calls": sum(c.api_calls for c in counts),
            "seconds": round(sum(a.result.seconds for a in answers), 3),
        },
    }


def extras(answers: list[ChoiceAnswer]) -> dict[str, Any]:
    """Per choice: the stored comparison id, the method's label and guide score."""
    return {
        "choices": [
            {
                "index": a.index,
                "comparison_id": a.comparison_id,
                "label": a.result.label,
                "score": a.result.score,
            }
            for a in sorted(answers, key=lambda a: a.index)
        ]
    }


def completion_body(rid: str, created: int, model: str, answers: list[ChoiceAnswer]) -> dict[str, Any]:
    """A whole /v1/completions response."""
    return {
        "id": rid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": a.index, "text": a.text, "logprobs": None, "finish_reason": a.finish_reason}
            for a in sorted(answers, key=lambda a: a.index)
        ],
        "usage": usage(answers),
        "w2s": extras(answers),
    }


def chat_body(rid: str, created: int, model: str, answers: list[ChoiceAnswer]) -> dict[str, Any]:
    """A whole /v1/chat/completions response."""
    return {
        "id": rid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": a.index,
                "message": {"role": "assistant", "content": a.text},
                "logprobs": None,
                "finish_reason": a.finish_reason,
            }
            for a in sorted(answers, key=lambda a: a.index)
        ],
        "usage": usage(answers),
        "w2s": extras(answers),
    }


class Chunks:
    """Stream chunks of one response: text deltas, finish reasons, the optional usage chunk."""

    def __init__(self, rid: str, created: int, model: str, chat: bool) -> None:
        self.head = {
            "id": rid,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": model,
        }
        self.chat = chat
        self.started: set[int] = set()

    def _choice(self, index: int, text: str | None, finish: str | None) -> dict[str, Any]:
        if not self.chat:
            return {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}
        delta: dict[str, Any] = {}
        if index not in self.started:
            delta["role"] = "assistant"  # the first chunk of each choice names the role
            self.started.add(index)
        if text is not None:
            delta["content"] = text
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    def delta(self, index: int, text: str) -> str:
        """An SSE event carrying new text."""
        return sse({**self.head, "choices": [self._choice(index, text, None)]})

    def finish(self, answer: ChoiceAnswer) -> str:
        """The choice's last event: its finish reason (and, as an extra, its comparison id)."""
        body = {
            **self.head,
            "choices": [self._choice(answer.index, None if self.chat else "", answer.finish_reason)],
        }
        body["w2s"] = extras([answer])
        return sse(body)

    def usage(self, answers: list[ChoiceAnswer]) -> str:
        """The usage chunk (stream_options.include_usage): no choices."""
        return sse({**self.head, "choices": [], "usage": usage(answers)})


def sse(data: dict[str, Any]) -> str:
    """One server-sent event."""
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


DONE = "data: [DONE]\n\n"
