"""Limits by who really asks: per voter token and per client address, shared by replicas through the
database; the client address behind trusted proxies only. (The cost cap and deadline of one
comparison are the runner's RequestLimits.)
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, text

from .errors import RateLimited
from .store.models import RateEvent

WINDOW_S = 60.0


@dataclass(frozen=True)
class LimitSettings:
    """Requests per minute (0 = off); see README, "Running a public arena"."""

    per_token: int = 20  # comparisons and votes, each, per voter token
    per_address: int = 60  # comparisons and votes, each, per client address
    tokens_per_address: int = 10  # new voter tokens per client address


def client_address(host: str | None, forwarded_for: str | None, trusted: tuple[str, ...]) -> str:
    """The address that really asks: the peer, or the X-Forwarded-For entry a trusted proxy added.

    X-Forwarded-For is read right to left, skipping trusted proxies; the first other address is
    the client. From an untrusted peer the header is ignored (anyone can write one).
    """
    peer = host or "unknown"
    if not forwarded_for or not _trusted(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _trusted(hop, trusted):
            return hop
    return peer


def _trusted(address: str, trusted: tuple[str, ...]) -> bool:
    """Whether an address is one of the configured proxies ('private' = any private network)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for item in trusted:
        if item == "private":
            if ip.is_private or ip.is_loopback:
                return True
            continue
        try:
            if ip in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue
    return False


class Limits:
    """Sliding one-minute windows kept in the database (rate_event), so every replica sees them."""

    def __init__(self, store: Any, settings: LimitSettings) -> None:
        self.store = store
        self.settings = settings
        self._lock = threading.Lock()  # one process: serialise count-then-insert (SQLite has no row lock)
        self._hits = 0

    def hit(self, key: str, kind: str, per_minute: int, now: float | None = None) -> None:
        """Count one request of `kind` for `key`, or raise RateLimited saying when to retry."""
        if per_minute <= 0:
            return
        now = time.time() if now is None else now
        key = key[:200]
        engine = self.store.engine
        with self._lock, engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # Replicas: one transaction at a time per key and kind, so the count cannot race.
                lock = zlib.crc32(f"{key}|{kind}".encode()) - 2**31
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
            # Insert first, then count: on SQLite the insert takes the write lock, so another
            # process's count waits for this transaction; over the limit, the rollback undoes it.
            conn.execute(insert(RateEvent).values(key=key, kind=kind, at=now))
            recent = (RateEvent.key == key) & (RateEvent.kind == kind) & (RateEvent.at > now - WINDOW_S)
            count, oldest = conn.execute(select(func.count(), func.min(RateEvent.at)).where(recent)).one()
            if count > per_minute:
                wait = max(1, math.ceil(oldest + WINDOW_S - now))
                raise RateLimited(
                    f"too many {kind}s: at most {per_minute} a minute; try again in {wait} s",
                    retry_after=wait,
                )
            self._hits += 1
            if self._hits % 200 == 0:  # keep the table small: only the last window matters
                conn.execute(delete(RateEvent).where(RateEvent.at < now - 2 * WINDOW_S))

    def check_request(self, kind: str, voter_id: str | None, address_hash: str | None) -> None:
        """Limits of one comparison or vote: per token, then per client address."""
        if voter_id:
            self.hit(f"voter:{voter_id}", kind, self.settings.per_token)
        if address_hash:
            self.hit(f"addr:{address_hash}", kind, self.settings.per_address)

    def check_token(self, address_hash: str | None) -> None:
        """Limit on new tokens from one client address."""
        self.hit(f"addr:{address_hash or 'unknown'}", "token", self.settings.tokens_per_address)
