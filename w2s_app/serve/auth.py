"""Optional bearer key (W2S_SERVE_KEY), compared in constant time; the voter id of a caller."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from .errors import OpenAIError


def bearer(header: str | None) -> str | None:
    """The token of an 'Authorization: Bearer <token>' header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def check_key(expected: str | None, header: str | None) -> None:
    """Raise a 401 unless no key is configured or the header carries it (constant-time compare)."""
    if not expected:
        return
    given = bearer(header) or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise OpenAIError(
            401,
            "invalid or missing API key: send 'Authorization: Bearer <W2S_SERVE_KEY>'",
            type_="authentication_error",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )


def voter_id(expected: str | None, header: str | None, keyed_hash: Callable[[str, str], str]) -> str:
    """'api:<keyed hash of the key>', or 'api:anonymous' when the server checks no key.

    The hash is keyed with the deployment's secret (as voter and address hashes are): a plain hash of
    a weak key could be reversed by anyone who reads the database or an export.
    """
    token = bearer(header)
    if not expected or not token:
        return "api:anonymous"
    return "api:" + keyed_hash(token, "serve-key")[:16]
