"""`python -m w2s_app serve`: run the API with uvicorn; loopback only unless --host is given."""

from __future__ import annotations

import logging

from ..ui.routes import BoardPayloads
from ..wiring import Services, limit_malloc_arenas
from .app import build_api

log = logging.getLogger(__name__)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(services: Services, host: str, port: int, with_app: bool = False) -> None:
    """Serve until interrupted (with the page at / when asked); warn when others can reach a keyless server."""
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
    if with_app:
        import gradio as gr

        from ..ui import build_app, launch_kwargs

        # The same services: one runner (models loaded once), one model queue, one set of limits.
        api = gr.mount_gradio_app(
            api, build_app(services, payloads), path="/", show_error=False, **launch_kwargs()
        )
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
