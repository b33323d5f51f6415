"""The Gradio page: `build_app(services)` makes it; `main()` serves it (app.py calls it).

Gradio is imported only by the page's own modules, so the service can use the page's actions
(`handlers`, `caller`, `routes`) without loading it.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any


def build_app(services: Any, payloads: Any = None) -> Any:
    """The page's gr.Blocks (see ui/blocks.py)."""
    from .blocks import build_app as build

    return build(services, payloads)


def launch_kwargs() -> dict[str, Any]:
    """Theme, CSS and the vote keys' script for launch() / mount_gradio_app()."""
    from .blocks import launch_kwargs as kwargs

    return kwargs()


def main() -> None:
    """Serve the app on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 0.0.0.0:7860)."""
    from ..arena.boards import BoardPayloads
    from ..arena.json_route import add_json_routes
    from ..config import Settings
    from ..wiring import build_services, limit_malloc_arenas, startup_message

    limit_malloc_arenas()  # before any thread starts: memory stays flat under load
    try:
        services = build_services(Settings.from_env())
    except Exception as exc:
        message = startup_message(exc)
        if message is None:
            raise
        print(f"w2s-arena: cannot start: {message}", file=sys.stderr)  # one line, no traceback
        raise SystemExit(2) from None
    services.board.start()
    payloads = BoardPayloads(services)  # the Gradio /leaderboard and the JSON route share it
    demo = build_app(services, payloads)
    # uvicorn (under Gradio) would believe X-Forwarded-For from any loopback peer and rewrite the
    # client address before the app sees it. Trust nothing there: the app believes the header only
    # from W2S_TRUSTED_PROXIES (limits.client_address). A write, not a read: uvicorn takes this only
    # from its environment, and Gradio starts uvicorn inside launch(), so it is set here, just before.
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    demo.launch(
        server_name=services.settings.server_name,
        server_port=services.settings.server_port,
        show_error=False,
        prevent_thread_lock=True,
        **launch_kwargs(),
    )
    add_json_routes(demo.app, services, payloads)  # GET /w2s/leaderboard.json: cheap polling, no queue
    try:  # not demo.block_thread(): it wakes ten times a second to look at a flag
        threading.Event().wait()
    except KeyboardInterrupt:
        demo.close()
