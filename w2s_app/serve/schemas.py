"""Request bodies (pydantic) and how they map onto a comparison's settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from .. import options
from .errors import bad_request

MAX_CHOICES = 8  # n (and prompts per request) above this would hold the one model queue too long
MAX_STOPS = 4  # as OpenAI


class StreamOptions(BaseModel):
    """`stream_options`: only include_usage is understood."""

    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class OpenAIFields(BaseModel):
    """OpenAI's fields every generation request shares (the settings' own fields are added below)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=MAX_CHOICES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # Accepted only at their neutral values, so clients that always send them keep working.
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | int | None = None

    def unsupported(self) -> None:
        """Refuse OpenAI features the search cannot honour, naming the field."""
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name) not in (None, 0, 0.0):
                raise bad_request(f"{name} is not supported (only 0)", param=name)
        if self.logit_bias:
            raise bad_request("logit_bias is not supported", param="logit_bias")
        if self.logprobs not in (None, False, 0):
            raise bad_request("logprobs are not supported", param="logprobs")

    def stops(self) -> tuple[str, ...]:
        """Stop strings: at most four, none empty."""
        raw = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(raw) > MAX_STOPS:
            raise bad_request(f"at most {MAX_STOPS} stop strings, got {len(raw)}", param="stop")
        if any(not s for s in raw):
            raise bad_request("stop strings must not be empty", param="stop")
        return tuple(raw)

    def search_settings(self, max_tokens: Any = None) -> dict[str, Any]:
        """The comparison's settings by option name (None: the preset's default, as on the command line).

        Every setting declared in options.py rides in the body under its service name (max_tokens,
        n_best); the values are checked by options.validate, with the same messages as every surface.
        """
        values = {o.name: getattr(self, o.surface_name("serve")) for o in options.ALL}
        if max_tokens is not None:
            values["max_new_tokens"] = max_tokens
        return values


# One field per declared setting, typed Any: options.validate checks them (a JSON true is not a number).
SearchFields = create_model(
    "SearchFields",
    __base__=OpenAIFields,
    __doc__="OpenAI's fields plus every comparison setting (options.py) under its service name.",
    **{o.surface_name("serve"): (Any, Field(None, description=o.help)) for o in options.ALL},
)


class CompletionRequest(SearchFields):  # type: ignore[misc,valid-type]
    """POST /v1/completions."""

    prompt: str | list[str]
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None

    def prompts(self) -> list[str]:
        """One or several prompts (each answered n times)."""
        prompts = [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)
        if not prompts:
            raise bad_request("prompt must not be an empty list", param="prompt")
        if len(prompts) * self.n > MAX_CHOICES:
            raise bad_request(f"at most {MAX_CHOICES} choices (prompts x n) per request", param="n")
        if self.echo:
            raise bad_request("echo is not supported", param="echo")
        if self.suffix:
            raise bad_request("suffix is not supported", param="suffix")
        if self.best_of not in (None, 1):
            raise bad_request("best_of is not supported; use the model '<preset>/bon' with n_best", "best_of")
        return prompts


class TextPart(BaseModel):
    """A text part of a message's content list."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        """The content as one string."""
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatRequest(SearchFields):  # type: ignore[misc,valid-type]
    """POST /v1/chat/completions."""

    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: Any = None  # OpenAI's newer name for max_tokens

    def prompt(self) -> str:
        """Fold the messages into the one user turn the search answers (see docs/service.md, multi-turn)."""
        last = self.messages[-1]
        if last.role != "user":
            raise bad_request("the last message must come from the user", param="messages")
        return fold_messages(self.messages)


def fold_messages(messages: list[Message]) -> str:
    """System messages first, then earlier turns labelled 'User:'/'Assistant:', then the last user text.

    A single user message is passed unchanged, so chat and completions (and `generate`) agree.
    """
    systems = [m.text() for m in messages[:-1] if m.role in ("system", "developer")]
    turns = [m for m in messages[:-1] if m.role in ("user", "assistant")]
    parts = [*systems, *(f"{m.role.title()}: {m.text()}" for m in turns), messages[-1].text()]
    return "\n\n".join(p for p in parts if p)


def split_model(model: str) -> tuple[str, str]:
    """'offline/w2s' -> ('offline', 'w2s'); a preset name may itself hold '/'."""
    preset, sep, method = model.rpartition("/")
    if not sep or not preset or not method:
        raise ValueError(model)
    return preset, method
