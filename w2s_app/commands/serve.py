"""`serve`: the OpenAI-compatible service (serve/), with the Gradio page at / under --with-app.

The command line chooses the doors: this module hands the service the page's mount, so neither
door imports the other.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import Settings
from ..wiring import Services, build_services
from .errors import CliError

NAME = "serve"


def add_parser(subparsers: Any) -> None:
    """Register `serve` and its options."""
    p = subparsers.add_parser(NAME, help="OpenAI-compatible API: every preset x method is a model")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--with-app", action="store_true", help="also serve the Gradio page at / (one queue)")


def run(args: argparse.Namespace) -> int:
    """Serve /v1/models, /v1/completions and /v1/chat/completions until interrupted."""
    from ..serve.command import serve

    if not 0 < args.port < 65536:
        raise CliError("--port must be between 1 and 65535")
    services = build_services(Settings.from_env())
    serve(services, args.host, args.port, page=page_mount(services) if args.with_app else None)
    return 0


def page_mount(services: Services) -> Any:
    """`serve --with-app`: mount the Gradio page at / on the service's app, sharing its services."""

    def mount(api: Any, payloads: Any) -> Any:
        import gradio as gr

        from ..ui import build_app, launch_kwargs

        page = build_app(services, payloads)
        return gr.mount_gradio_app(api, page, path="/", show_error=False, **launch_kwargs())

    return mount
