"""Read a board: one canonical view per request, the cached fit, its payload serialised once per fit,
and pollers paced per address (docs/public-arena.md).

Every spelling of a view is one view (leaderboard/views.py); a view never asked before is fitted in
the background at a bounded rate. A client address is answered at most once per `POLL_SECONDS` per
view and twice per `POLL_SECONDS` over all views; a faster poller waits for its turn (a sleep, no
work), and one that would wait longer than `MAX_WAIT`, or asks for a view still being fitted, is
refused (PollRefused: 429 with Retry-After).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any

from ..leaderboard import BoardView, board_json
from ..leaderboard.board import Leaderboard
from ..leaderboard.cache import BoardPending
from ..leaderboard.views import ORDER, ViewError, parse_view
from ..wiring import Services
from .caller import address_hash
from .checks import check_preset
from .errors import ArenaError, database_errors

POLL_SECONDS = 1.0  # one answer per address and view per second at most
ADDRESS_SHARE = 0.5  # ... and two a second per address over all its views
MAX_WAIT = 5.0  # a poller that would wait longer is refused (it is asking many times at once)


def board_view(services: Services, *values: Any, **named: Any) -> BoardView:
    """The canonical view of a leaderboard request (positional values in views.ORDER), else ArenaError."""
    given = {**dict(zip(ORDER, values, strict=False)), **named}
    try:
        return parse_view(given, lambda preset: check_preset(services, preset))
    except ViewError as exc:
        raise ArenaError(str(exc)) from exc


@database_errors
def leaderboard(
    services: Services, *values: Any, view: BoardView | None = None, wait: float = 30.0, **named: Any
) -> Leaderboard:
    """The cached leaderboard of one view (views.FIELDS: preset, style_control, min_vote_seconds,
    drop_one_position, source, drop_followers, or a parsed `view`); a judge's board carries its
    agreement with people. A view not fitted yet waits up to `wait` s (cache.BoardPending)."""
    return services.board.get(view or board_view(services, *values, **named), wait)


def board_payload(board: Any, fits: int) -> dict[str, Any]:
    """The leaderboard as JSON-ready data: table, win rates, head-to-head records, the top pair's
    separation, style, counts, judges that voted and (a judge's board) its agreement with people."""
    return {**board_json(board), "fits": fits}  # fits since start: grows with votes, never with polls


class PollRefused(ArenaError):
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
        """(payload, its JSON) of a view, after this address's turn comes (ArenaError; PollRefused: 429)."""
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
        who = address or "unknown"
        key = (who, view)
        with self._lock:
            now = time.monotonic()
            # A view's own turn, and the address's turn over all views (a poller that asks for a new
            # view each time gets ADDRESS_SHARE of the view rate, not an answer per request).
            turn = max(now, self._next.get(key, 0.0), self._next.get((who, None), 0.0))
            refused = turn - now > self.max_wait
            if not refused:
                self._next[key] = turn + self.poll_seconds
                self._next[(who, None)] = turn + self.poll_seconds * ADDRESS_SHARE
            for k in (key, (who, None)):
                if k in self._next:
                    self._next.move_to_end(k)
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
