"""Who is asking, resolved in one place for every door: the page, the named API, the JSON route, the service.

The voter is the logged-in Hugging Face user, else the holder of a token this server signed; the
address is the peer, or what a trusted proxy says in its forwarded headers, kept only as a keyed hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import RateLimited
from ..identity import IdentityError, Voter
from ..limits import client_address
from ..wiring import Services
from .errors import ArenaError, database_errors


@dataclass(frozen=True)
class Caller:
    """A request's voter (None when not yet proven) and hashed address."""

    voter: Voter | None
    address: str | None

    @property
    def voter_id(self) -> str | None:
        """The id votes and comparisons are stored under."""
        return self.voter.id if self.voter else None


def _username(profile: Any) -> str | None:
    """The Hugging Face login's user name, if any."""
    return profile.get("preferred_username") if isinstance(profile, dict) else None


def address_hash(services: Services, request: Any) -> str | None:
    """The hashed address of who really asks (X-Forwarded-For only from configured proxies)."""
    if request is None:
        return None
    host = getattr(getattr(request, "client", None), "host", None)
    headers = getattr(request, "headers", None) or {}
    lines = headers.getlist if hasattr(headers, "getlist") else lambda name: [headers.get(name) or ""]
    address = client_address(
        host, lines("x-forwarded-for"), services.settings.trusted_proxies, lines("forwarded")
    )
    return services.identity.keyed_hash(address, "address")


def verified_voter(services: Services, token: Any, profile: Any = None) -> Voter:
    """The voter behind a request: the logged-in user, else the token's, else ArenaError."""
    username = _username(profile)
    if username:
        return Voter(f"hf:{username}", "oauth")
    try:
        return services.identity.verify(token)
    except IdentityError as exc:
        raise ArenaError(str(exc)) from exc


def caller(services: Services, token: Any, request: Any, profile: Any = None) -> Caller:
    """The proven voter and the hashed address of a request (ArenaError when the token is not ours)."""
    return Caller(verified_voter(services, token, profile), address_hash(services, request))


def owner(services: Services, token: Any, admin_key: Any, profile: Any = None) -> str | None:
    """Whose rows a request may read: None (everyone's) with the admin key, else the verified voter's."""
    if services.identity.is_admin(admin_key):
        return None
    if admin_key:
        raise ArenaError("wrong admin key")
    return verified_voter(services, token, profile).id


@database_errors
def issue_token(services: Services, request: Any = None, profile: Any = None) -> str:
    """A new signed voter token for this client (limited per client address)."""
    try:
        services.limits.check_token(address_hash(services, request))
    except RateLimited as exc:
        raise ArenaError(str(exc)) from exc
    username = _username(profile)
    return services.identity.issue(f"hf:{username}" if username else None)


def session_token(services: Services, stored: Any, request: Any = None, profile: Any = None) -> str | None:
    """The browser's token if the server issued it (and it is the logged-in user's), else a new one."""
    username = _username(profile)
    try:
        voter = services.identity.verify(stored)
        if username is None or voter.id == f"hf:{username}":
            return stored
    except IdentityError:
        pass
    try:
        return issue_token(services, request, profile)
    except ArenaError:
        return None  # too many new tokens from this address: actions will say so
