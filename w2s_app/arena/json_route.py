"""GET /w2s/leaderboard.json on a FastAPI app: the page's process and the service's serve the same route.

GET /w2s/leaderboard.json?preset=&source=humans&style_control=0&min_vote_seconds=0&drop_one_position=0
answers the object the Gradio /leaderboard endpoint answers, from the same BoardPayloads.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ..wiring import Services
from .boards import BoardPayloads, PollRefused
from .errors import ArenaError

PATH = "/w2s/leaderboard.json"


def add_json_routes(app: Any, services: Services, payloads: BoardPayloads) -> None:
    """Register GET /w2s/leaderboard.json on a running app's FastAPI instance."""

    async def get_leaderboard(
        request: Request,
        preset: str = "",
        style_control: str = "0",
        min_vote_seconds: str = "0",
        drop_one_position: str = "0",
        source: str = "humans",
        drop_followers: str = "0",
    ) -> Response:
        view = (preset, style_control, min_vote_seconds, drop_one_position, source, drop_followers)
        try:
            _, body = await run_in_threadpool(payloads.get, request, *view)
        except PollRefused as exc:
            retry = str(max(1, math.ceil(exc.retry_after)))
            return Response(json.dumps({"error": str(exc)}), status_code=429, media_type="application/json",
                            headers={"Retry-After": retry})  # fmt: skip
        except ArenaError as exc:
            return Response(json.dumps({"error": str(exc)}), status_code=400, media_type="application/json")
        return Response(body, media_type="application/json", headers={"Cache-Control": "max-age=1"})

    app.add_api_route(PATH, get_leaderboard, methods=["GET"])
