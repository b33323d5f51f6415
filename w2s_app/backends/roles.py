"""A model in a role: which weights, which prompt template, which end-of-sequence and stop strings.

`Role` is a local model; `ApiRole` the strong model behind an OpenAI-compatible server.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from ..config.presets import CHAT, RoleSpec
from .api_config import ApiConfig
from .api_registry import shared_client
from .local import LoadedModel
from .openai_api import ApiClient

__all__ = ["CHAT", "ApiRole", "Models", "Role", "RoleSpec", "api_role", "render_prompt"]


def render_prompt(tokenizer: Any, template: str, prompt: str, system: str | None = None) -> str:
    """Apply a role's template to the user prompt, giving the text the response continues."""
    if template == CHAT:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("template 'chat' needs a tokenizer with a chat template")
        messages = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return template.replace("{prompt}", prompt)


@dataclass
class Role:
    """A loaded model bound to its template; encodes prompts and responses for that model."""

    spec: RoleSpec
    loaded: LoadedModel
    _prompt_cache: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @property
    def tokenizer(self) -> Any:
        """The role's tokenizer."""
        return self.loaded.tokenizer

    @property
    def model(self) -> Any:
        """The role's torch model."""
        return self.loaded.model

    def prompt_text(self, prompt: str) -> str:
        """The templated prompt."""
        return render_prompt(self.tokenizer, self.spec.template, prompt, self.spec.system)

    def prompt_ids(self, prompt: str) -> list[int]:
        """Token ids of the templated prompt (BOS added for plain templates when the model uses one)."""
        if prompt not in self._prompt_cache:
            text = self.prompt_text(prompt)
            tok = self.tokenizer
            # Chat templates write their own BOS text; plain templates rely on the tokenizer adding it.
            special = self.spec.template != CHAT
            ids = tok(text, add_special_tokens=special).input_ids
            if not ids and tok.bos_token_id is not None:
                ids = [tok.bos_token_id]
            # A few, not all: comparisons running together (one shared loop) each have their prompt.
            if len(self._prompt_cache) >= 64:
                self._prompt_cache.pop(next(iter(self._prompt_cache)))
            self._prompt_cache[prompt] = list(ids)
        return self._prompt_cache[prompt]

    def response_ids(self, text: str) -> list[int]:
        """Token ids of a response text, with no special tokens added."""
        return list(self.tokenizer(text, add_special_tokens=False).input_ids) if text else []

    @property
    def eos_id(self) -> int:
        """The token scored at the end of a finished response."""
        if self.spec.eos:
            tid = self.tokenizer.convert_tokens_to_ids(self.spec.eos)
            # Unknown tokens map to the unk id, so check the id maps back to the same token.
            if tid is None or self.tokenizer.convert_ids_to_tokens(tid) != self.spec.eos:
                raise ValueError(f"eos token {self.spec.eos!r} is not in the tokenizer")
            return int(tid)
        if self.tokenizer.eos_token_id is None:
            raise ValueError(f"model {self.loaded.source!r} has no EOS token; set 'eos' in the preset")
        return int(self.tokenizer.eos_token_id)

    @functools.cached_property
    def never_ids(self) -> tuple[int, ...]:
        """Token ids no answer may contain (control and unused tokens), never the role's end-of-answer."""
        stops = set(self.stop_ids)
        return tuple(i for i in self.loaded.never_ids if i not in stops)

    @property
    def stop_ids(self) -> tuple[int, ...]:
        """Token ids that end the strong model's response."""
        ids = set(self.loaded.eos_ids)
        if self.spec.eos:
            ids.add(self.eos_id)
        return tuple(sorted(ids))

    @property
    def context_limit(self) -> int | None:
        """Most tokens (prompt plus answer) the model reads (its GGUF or its config); None when unknown."""
        if self.loaded.context_limit or self.model is None:
            return self.loaded.context_limit
        return getattr(self.model.config, "max_position_embeddings", None) or None

    def count_tokens(self, prompt: str, text: str) -> tuple[int, int] | None:
        """Tokens of the templated prompt and of an answer text."""
        return len(self.prompt_ids(prompt)), len(self.response_ids(text))

    def decode(self, ids: list[int]) -> str:
        """Response text of token ids, special tokens dropped."""
        return self.tokenizer.decode(ids, skip_special_tokens=True)


@dataclass
class ApiRole:
    """The strong role when the model is remote: the preset's spec plus the client that reaches it."""

    spec: Any  # RoleSpec; its template "chat" means the server applies its own chat template
    client: ApiClient

    @property
    def chat(self) -> bool:
        """True when the model is used through the chat endpoint (configured or detected)."""
        return self.spec.template == "chat" or self.client.config.model in self.client.server.chat_only

    def prompt_text(self, prompt: str) -> str:
        """The completions prompt: the role's plain template applied to the user prompt."""
        return self.spec.template.replace("{prompt}", prompt)

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """The chat messages: optional system message, then the user prompt."""
        out = [{"role": "user", "content": prompt}]
        if self.spec.system:
            out.insert(0, {"role": "system", "content": self.spec.system})
        return out

    def describe(self) -> str:
        """The model and server, without credentials."""
        return self.client.describe()

    @property
    def context_limit(self) -> int | None:
        """Unknown here: the server reports its own limit."""
        return None

    def count_tokens(self, prompt: str, text: str) -> tuple[int, int] | None:
        """Unknown here: the server reports the tokens it read and wrote."""
        return None


def api_role(
    spec: Any, base_url: str | None = None, model: str | None = None, api_key: str = "", **tries: float
) -> ApiRole:
    """The strong role for an 'api' source; the preset's api_base, model and api_key_env apply when
    neither the command line nor the environment names a server or model (`api_key`: read from the
    variable the preset's api_key_env names, else OPENAI_API_KEY)."""
    base = base_url or getattr(spec, "api_base", None)
    name = model or getattr(spec, "model", None)
    key_env = getattr(spec, "api_key_env", None)
    config = ApiConfig.for_source(spec.source, base, name, api_key, key_env, **tries)
    return ApiRole(spec, shared_client(config, ApiClient))


@dataclass
class Models:
    """A preset's three roles, loaded: the strong model and the guide pair."""

    strong: Any  # a Role for a local model; an ApiRole for a model behind a server
    tuned: Any  # a Role, or a RemoteGuide
    untuned: Any
