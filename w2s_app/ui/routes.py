"""A plain JSON route for the leaderboard: what pollers should use (no Gradio queue, cached bytes).

GET /w2s/leaderboard.json?preset=&style_control=0&min_vote_seconds=0&drop_one_position=0 answers
the same object as the /leaderboard API endpoint, serialised once per fit.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ..wiring import Services
from .caller import UserError
from .handlers import leaderboard

PATH = "/w2s/leaderboard.json"


def board_payload(board: Any, fits: int) -> dict[str, Any]:
    """The leaderboard as JSON-ready data (the /leaderboard endpoint's answer)."""
    rates = board.winrate.astype(object).where(board.winrate.notna(), None)
    return {
        "counts": board.counts,
        "table": board.table.to_dict(orient="records"),
        "winrate": rates.to_dict(orient="index"),
        "style": board.style,
        "fits": fits,  # fits since start: grows with votes, never with polls
    }


def _flag(value: str | None) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def add_json_routes(app: Any, services: Services) -> None:
    """Register GET /w2s/leaderboard.json on the running app's FastAPI instance."""
    from fastapi.responses import Response

    cache: dict[int, tuple[Any, bytes]] = {}  # id(board) -> (board, its JSON): a new fit is a new object
    lock = threading.Lock()

    def get_leaderboard(
        preset: str = "", style_control: str = "0", min_vote_seconds: str = "0", drop_one_position: str = "0"
    ) -> Response:
        try:
            board = leaderboard(
                services, preset, _flag(style_control), min_vote_seconds, _flag(drop_one_position)
            )
        except UserError as exc:
            return Response(json.dumps({"error": str(exc)}), status_code=400, media_type="application/json")
        with lock:
            hit = cache.get(id(board))
            if hit is not None and hit[0] is board:
                body = hit[1]
            else:
                body = json.dumps(board_payload(board, services.board.fits)).encode()
                if len(cache) > 64:
                    cache.clear()
                cache[id(board)] = (board, body)
        return Response(body, media_type="application/json", headers={"Cache-Control": "max-age=2"})

    app.add_api_route(PATH, get_leaderboard, methods=["GET"])
