"""`python -m w2s_app serve`: run the API with uvicorn; loopback only unless --host is given."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..arena.boards import BoardPayloads
from ..wiring import Services, limit_malloc_arenas
from .app import build_api

log = logging.getLogger(__name__)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(
    services: Services, host: str, port: int, page: Callable[[Any, BoardPayloads], Any] | None = None
) -> None:
    """Serve until interrupted; warn when others can reach a keyless server.

    `page(api, payloads)` mounts another door on the same app and services (`serve --with-app`: the
    command line passes the Gradio page's mount, so this door never imports the page's).
    """
    import uvicorn

    if host not in LOOPBACK and not services.settings.serve_key:
        log.warning(
            "warning: serving on %s without W2S_SERVE_KEY: anyone who can reach this port can run searches",
            host,
        )
    limit_malloc_arenas()  # before uvicorn's threads: memory stays flat under load
    services.board.start()
    payloads = BoardPayloads(services)  # the JSON route and, with the page, its /leaderboard share it
    api = build_api(services, payloads)
    if page is not None:
        # The same services: one runner (models loaded once), one model queue, one set of limits.
        api = page(api, payloads)
        print(f"w2s-arena page on http://{host}:{port}/", flush=True)
    print(
        f"w2s-arena OpenAI-compatible service on http://{host}:{port}/v1 (models: GET /v1/models)", flush=True
    )
    # Forwarded headers are believed only from W2S_TRUSTED_PROXIES, by the app itself (limits.py);
    # uvicorn's own proxy handling would believe any loopback peer.
    # A page's open event streams would hold a graceful shutdown forever: give them two seconds.
    uvicorn.run(
        api, host=host, port=port, log_level="warning", proxy_headers=False, timeout_graceful_shutdown=2
    )
