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
    """Requests per minute (0 = off); see docs/public-arena.md."""

    per_token: int = 20  # comparisons and votes, each, per voter token
    per_address: int = 60  # comparisons and votes, each, per client address
    tokens_per_address: int = 10  # new voter tokens per client address


def client_address(
    host: str | None,
    forwarded_for: str | list[str] | None,
    trusted: tuple[str, ...],
    forwarded: str | list[str] | None = None,
) -> str:
    """The address that really asks: the peer, or the last address a trusted proxy saw.

    From a trusted peer, the hops of every X-Forwarded-For line (in order; a proxy such as HAProxy
    with `option forwardfor` adds a line of its own below the client's) are read right to left,
    skipping trusted proxies: the first other address is the client. Without X-Forwarded-For, the
    `for=` hops of the standard Forwarded header are read the same way. (A proxy that writes only
    Forwarded must drop a client's X-Forwarded-For.) From an untrusted peer both are ignored.
    """
    peer = host or "unknown"
    if not _trusted(peer, trusted):
        return peer
    hops = _hops(forwarded_for, _xff_hops) or _hops(forwarded, _forwarded_hops)
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return peer


def _hops(lines: str | list[str] | None, parse: Any) -> list[str]:
    """The hops of one header over all its lines, in order."""
    if not lines:
        return []
    return [hop for line in ([lines] if isinstance(lines, str) else lines) for hop in parse(line)]


def _xff_hops(line: str) -> list[str]:
    """Addresses of one X-Forwarded-For line."""
    return [_bare(h) for h in line.split(",") if h.strip()]


def _forwarded_hops(line: str) -> list[str]:
    """The `for=` addresses of one Forwarded line (RFC 7239), quotes, brackets and ports removed."""
    out = []
    for element in line.split(","):
        for pair in element.split(";"):
            name, _, value = pair.partition("=")
            if name.strip().lower() == "for" and value.strip():
                out.append(_bare(value.strip().strip('"')))
    return out


def _bare(hop: str) -> str:
    """An address without brackets or port: '[2001:db8::1]:4711' -> '2001:db8::1', '1.2.3.4:80' -> '1.2.3.4'."""
    hop = hop.strip()
    if hop.startswith("["):
        return hop[1:].split("]", 1)[0]
    if hop.count(":") == 1:  # IPv4 with a port (an IPv6 address has several colons)
        return hop.split(":", 1)[0]
    return hop


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

    def hit(self, key: str, kind: str, per_minute: int, now: float | None = None, count: int = 1) -> None:
        """Count `count` requests of `kind` for `key` (all or none), or raise RateLimited saying when to retry."""
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
            conn.execute(insert(RateEvent), [{"key": key, "kind": kind, "at": now}] * max(1, count))
            recent = (RateEvent.key == key) & (RateEvent.kind == kind) & (RateEvent.at > now - WINDOW_S)
            used, oldest = conn.execute(select(func.count(), func.min(RateEvent.at)).where(recent)).one()
            if used > per_minute:
                wait = max(1, math.ceil(oldest + WINDOW_S - now))
                # A request of several (a service request's choices) says so: alone over the limit, it never passes.
                asked = f" and this request counts as {count}" if count > 1 else ""
                raise RateLimited(
                    f"too many {kind}s: at most {per_minute} a minute{asked}; try again in {wait} s",
                    retry_after=wait,
                )
            self._hits += 1
            if self._hits % 200 == 0:  # keep the table small: only the last window matters
                conn.execute(delete(RateEvent).where(RateEvent.at < now - 2 * WINDOW_S))

    def check_request(
        self, kind: str, voter_id: str | None, address_hash: str | None, count: int = 1
    ) -> None:
        """Limits of `count` comparisons or votes (a service request's choices): per token, then per address."""
        if voter_id:
            self.hit(f"voter:{voter_id}", kind, self.settings.per_token, count=count)
        if address_hash:
            self.hit(f"addr:{address_hash}", kind, self.settings.per_address, count=count)

    def check_token(self, address_hash: str | None) -> None:
        """Limit on new tokens from one client address."""
        self.hit(f"addr:{address_hash or 'unknown'}", "token", self.settings.tokens_per_address)
