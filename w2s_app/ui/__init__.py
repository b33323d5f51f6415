"""Gradio UI: `build_app(services)` makes the page; `main()` serves it (app.py calls it)."""

from __future__ import annotations

import os

from .layout import build_app, launch_kwargs
from .services import Services

__all__ = ["Services", "build_app", "main"]


def main() -> None:
    """Serve the app on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 0.0.0.0:7860)."""
    import sys

    from sqlalchemy.exc import SQLAlchemyError

    from ..config import ConfigError, Settings
    from ..identity import IdentityError
    from ..startup import StartupError

    try:
        settings = Settings.from_env()
        services = Services.from_settings(settings)
    except (StartupError, ConfigError, IdentityError, OSError) as exc:
        print(f"w2s-arena: cannot start: {exc}", file=sys.stderr)  # one line, no traceback
        raise SystemExit(2) from None
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"w2s-arena: cannot start: the database: {reason}", file=sys.stderr)
        raise SystemExit(2) from None
    demo = build_app(services)
    # One bounded queue: beyond max_queue waiting comparisons, clients get "queue full, try again".
    demo.queue(max_size=settings.max_queue, default_concurrency_limit=1)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        show_error=False,
        prevent_thread_lock=True,
        **launch_kwargs(),
    )
    from .routes import add_json_routes

    add_json_routes(demo.app, services)  # GET /w2s/leaderboard.json: cheap polling, no queue
    demo.block_thread()
