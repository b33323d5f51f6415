"""The leaderboard as pollers get it: the same cached fit, serialised once per fit, paced per address.

GET /w2s/leaderboard.json?preset=&source=humans&style_control=0&min_vote_seconds=0&drop_one_position=0
and the Gradio /leaderboard endpoint answer the same object from one `BoardPayloads`: nothing is
fitted or serialised per request. Every spelling of a view is one canonical view (leaderboard/views.py),
and a view never asked before is fitted in the background at a bounded rate. A client address is
answered at most once per `POLL_SECONDS` per view; a faster poller waits for its turn (a sleep, no
work), and one that would wait longer than `MAX_WAIT`, or asks for a view still being fitted, is
refused with 429 and Retry-After, so tight loops cost the models nothing (README: "Running a public
arena").
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ..leaderboard import BoardView, board_json
from ..leaderboard.cache import BoardPending
from ..wiring import Services
from .caller import UserError, address_hash
from .handlers import board_view, leaderboard

PATH = "/w2s/leaderboard.json"
POLL_SECONDS = 1.0  # one answer per address and view per second at most
MAX_WAIT = 5.0  # a poller that would wait longer is refused (it is asking many times at once)


def board_payload(board: Any, fits: int) -> dict[str, Any]:
    """The leaderboard as JSON-ready data: table, win rates, head-to-head records, the top pair's
    separation, style, counts, judges that voted and (a judge's board) its agreement with people."""
    return {**board_json(board), "fits": fits}  # fits since start: grows with votes, never with polls


class PollRefused(UserError):
    """A poll refused for now (too many at once, or a view still being fitted): 429 with Retry-After."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BoardPayloads:
    """Cached payloads of the cached boards, and the pacing of pollers by address and canonical view."""

    def __init__(
        self, services: Services, poll_seconds: float = POLL_SECONDS, max_wait: float = MAX_WAIT
    ) -> None:
        self.services = services
        self.poll_seconds = poll_seconds
        self.max_wait = max_wait
        self._payloads: OrderedDict[int, tuple[Any, dict[str, Any], bytes]] = OrderedDict()
        self._next: OrderedDict[tuple[str, Any], float] = OrderedDict()  # (address, view) -> next turn
        self._lock = threading.Lock()

    def get(self, request: Any, *values: Any, **named: Any) -> tuple[dict[str, Any], bytes]:
        """(payload, its JSON) of a view, after this address's turn comes (UserError; PollRefused: 429)."""
        view = board_view(self.services, *values, **named)  # every spelling of a view is one view
        self._pace(address_hash(self.services, request), view)
        try:
            board = leaderboard(self.services, view=view, wait=self.max_wait)
        except BoardPending as exc:
            raise PollRefused(str(exc), exc.retry_after) from exc
        with self._lock:
            hit = self._payloads.get(id(board))
            if hit is None or hit[0] is not board:  # a new fit is a new object
                payload = board_payload(board, self.services.board.fits)
                hit = (board, payload, json.dumps(payload).encode())
                self._payloads[id(board)] = hit
                while len(self._payloads) > 64:
                    self._payloads.popitem(last=False)
            return hit[1], hit[2]

    def _pace(self, address: str | None, view: BoardView) -> None:
        """Wait until this address may be answered again for this view (PollRefused past max_wait)."""
        key = (address or "unknown", view)
        with self._lock:
            now = time.monotonic()
            turn = max(now, self._next.get(key, 0.0))
            refused = turn - now > self.max_wait
            if not refused:
                self._next[key] = turn + self.poll_seconds
            self._next.move_to_end(key)
            while len(self._next) > 10_000:
                self._next.popitem(last=False)
        if refused:
            # A refusal that came back at once would let a tight loop spin on it: it waits as long as
            # the longest accepted wait (a sleeping thread costs no CPU), so a client asking again at
            # once costs a call per max_wait seconds, not a call per round trip.
            time.sleep(self.max_wait)
            raise PollRefused(
                "too many leaderboard requests at once from this address; poll at most once a second",
                self.poll_seconds,
            )
        if turn > now:
            time.sleep(turn - now)


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
        except UserError as exc:
            return Response(json.dumps({"error": str(exc)}), status_code=400, media_type="application/json")
        return Response(body, media_type="application/json", headers={"Cache-Control": "max-age=1"})

    app.add_api_route(PATH, get_leaderboard, methods=["GET"])
