"""What a process keeps for its whole life: the facts learned from each server, one client per configuration.

Servers differ in what they accept (llama.cpp ignores `n`, some reject `seed`), so each server is
probed once and the answer kept here, shared by every client of that server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .api_config import ApiConfig

C = TypeVar("C")


@dataclass
class ServerInfo:
    """What we learned about one server; None means not probed yet."""

    honours_n: bool | None = None
    accepts_seed: bool = True
    # `min_tokens` (llama.cpp's and vLLM's extension: no end of answer before that many tokens); a
    # server that refuses it is remembered and asked without.
    accepts_min_tokens: bool = True
    chat_only: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_SERVERS: dict[str, ServerInfo] = {}
_SERVERS_LOCK = threading.Lock()


def server_info(base_url: str) -> ServerInfo:
    """The remembered facts about a server (one record per base URL for the process)."""
    with _SERVERS_LOCK:
        return _SERVERS.setdefault(base_url, ServerInfo())


def forget_servers() -> None:
    """Forget every probed server (tests start from a clean slate)."""
    with _SERVERS_LOCK:
        _SERVERS.clear()


_CLIENTS: dict[ApiConfig, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def shared_client(config: ApiConfig, make: Callable[[ApiConfig], C]) -> C:
    """One client per configuration for the process (roles on the same server share it), made by
    `make` (the client class) the first time."""
    with _CLIENTS_LOCK:
        if config not in _CLIENTS:
            _CLIENTS[config] = make(config)
        return _CLIENTS[config]
