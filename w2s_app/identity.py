"""Who is asking: voter tokens signed by the server (HMAC), the admin key, and keyed hashes.

A token is `w2s1.<payload>.<signature>`: the payload (base64url JSON) names the voter (`t:<random>`,
or `hf:<user>` for a Hugging Face login), when it was issued and a random token id; the signature is
HMAC-SHA256 over the payload with the deployment's secret. Only the server can make one, so a
client cannot vote under an id it made up. The secret is W2S_SECRET, else a random one generated
once and kept in `<data dir>/secret.key` (replicas on one database need the same W2S_SECRET).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "w2s1"
MAX_TOKEN_CHARS = 512
SECRET_FILE = "secret.key"


class IdentityError(ValueError):
    """A token the server did not issue (forged, altered, expired or malformed); safe to show."""


@dataclass(frozen=True)
class Voter:
    """A verified voter: the id votes are stored under and the id of the token that proved it."""

    id: str
    token_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_secret(data_dir: Path, env_secret: str | None) -> bytes:
    """W2S_SECRET, else the secret kept in the data dir (made once, atomically, readable by us only)."""
    if env_secret:
        return env_secret.encode("utf-8")
    path = Path(data_dir) / SECRET_FILE
    if not path.exists():
        # Several processes may start at once: write a temp file, then link it into place; the
        # link fails for all but the first, and everyone reads the one that won.
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    value = path.read_text(encoding="ascii").strip()
    if len(value) < 32:
        raise IdentityError(f"{path} holds no usable secret; delete it to make a new one")
    return value.encode("ascii")


class Identity:
    """Issues and checks voter tokens; derives keyed hashes (export salt, client addresses)."""

    def __init__(self, secret: bytes, admin_key: str | None = None, max_age_s: float = 30 * 86400) -> None:
        if len(secret) < 16:
            raise IdentityError("the secret (W2S_SECRET) must be at least 16 characters")
        self._secret = secret
        self._admin_key = admin_key or None
        self.max_age_s = max_age_s

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, f"{PREFIX}.{payload}".encode("ascii"), hashlib.sha256).digest())

    def issue(self, subject: str | None = None) -> str:
        """A new token for a subject (a Hugging Face voter `hf:<user>`), or for a fresh anonymous voter."""
        subject = subject or f"t:{secrets.token_hex(12)}"
        claims = {"s": subject, "t": int(time.time()), "j": secrets.token_hex(8)}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        return f"{PREFIX}.{payload}.{self._sign(payload)}"

    def verify(self, token: object) -> Voter:
        """The voter a token proves, or IdentityError."""
        if not isinstance(token, str) or not token.strip():
            raise IdentityError("a voter token is required: reload the page, or get one from /token")
        token = token.strip()
        parts = token.split(".")
        if len(token) > MAX_TOKEN_CHARS or len(parts) != 3 or parts[0] != PREFIX:
            raise IdentityError("not a voter token issued by this server: get one from /token")
        _, payload, signature = parts
        try:
            if not hmac.compare_digest(self._sign(payload), signature):
                raise IdentityError("not a voter token issued by this server: get one from /token")
            claims = json.loads(_unb64(payload))
            subject, issued, token_id = str(claims["s"]), float(claims["t"]), str(claims["j"])
        except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise IdentityError("not a voter token issued by this server: get one from /token") from exc
        age = time.time() - issued
        if age > self.max_age_s or age < -300:
            raise IdentityError("this voter token has expired: get a new one from /token")
        return Voter(subject, token_id)

    def keyed_hash(self, value: str, purpose: str) -> str:
        """A hash of value that only this deployment can compute (needs the secret)."""
        key = hmac.new(self._secret, f"purpose:{purpose}".encode(), hashlib.sha256).digest()
        return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def export_salt(self) -> str:
        """The per-deployment salt for voter ids in exports (secret, so hashes cannot be re-made)."""
        return self.keyed_hash("export", "export-salt")

    @property
    def admin_enabled(self) -> bool:
        """Whether an admin key is configured (W2S_ADMIN_KEY)."""
        return self._admin_key is not None

    def is_admin(self, key: object) -> bool:
        """True only for the configured admin key (compared in constant time)."""
        if not self._admin_key or not isinstance(key, str) or not key:
            return False
        # surrogatepass: a key with a lone surrogate (not valid text) is simply not the key.
        given = key.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(given, self._admin_key.encode("utf-8", "surrogatepass"))
