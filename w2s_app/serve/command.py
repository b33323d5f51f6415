"""`python -m w2s_app serve`: run the API with uvicorn; loopback only unless --host is given."""

from __future__ import annotations

import logging

from ..config import Settings
from .app import build_api
from .services import ApiServices

log = logging.getLogger(__name__)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(host: str, port: int, settings: Settings | None = None, with_app: bool = False) -> None:
    """Build the services and serve until interrupted; warn when others can reach a keyless server."""
    import uvicorn

    services = ApiServices.from_settings(settings or Settings.from_env())
    if host not in LOOPBACK and not services.key:
        log.warning(
            "warning: serving on %s without W2S_SERVE_KEY: anyone who can reach this port can run searches",
            host,
        )
    api = build_api(services)
    if with_app:
        from .mount import mount_app

        api = mount_app(api, services)
        print(f"w2s-arena page on http://{host}:{port}/", flush=True)
    print(
        f"w2s-arena OpenAI-compatible service on http://{host}:{port}/v1 (models: GET /v1/models)", flush=True
    )
    uvicorn.run(api, host=host, port=port, log_level="warning")
