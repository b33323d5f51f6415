"""Per-voter rate limits for the public app: a sliding one-minute window, in memory, bounded."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque


class RateLimited(ValueError):
    """Too many requests from one voter; the message says when to try again (`retry_after`, seconds)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """At most `per_minute` events of each kind per key; 0 turns the limit off."""

    def __init__(self, per_minute: int, max_keys: int = 10_000) -> None:
        self.per_minute = per_minute
        self.max_keys = max_keys
        self._events: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: str | None, kind: str, now: float | None = None) -> None:
        """Record one event, or raise RateLimited when the key is over its limit."""
        if not self.per_minute:
            return
        now = time.monotonic() if now is None else now
        slot = (key or "anonymous", kind)
        with self._lock:
            events = self._events.pop(slot, None) or deque()
            while events and now - events[0] >= 60:
                events.popleft()
            if len(events) >= self.per_minute:
                self._events[slot] = events
                wait = 60 - (now - events[0])
                raise RateLimited(
                    f"too many {kind}s: at most {self.per_minute} a minute; try again in {wait:.0f} s",
                    retry_after=wait,
                )
            events.append(now)
            self._events[slot] = events  # most recent last, so eviction drops the oldest keys
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)
