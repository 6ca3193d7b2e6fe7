"""Expiring HMAC signatures for single-purpose URLs, with the server's secret key."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from roomrender.config import Settings

SECRET_FILE = "secret_key"


class SignatureInvalid(Exception):
    """The signature does not match: the URL was altered or signed by someone else."""


class SignatureExpired(Exception):
    """The signature was valid but its time is over."""


def server_secret(settings: Settings) -> bytes:
    """ROOMRENDER_SECRET_KEY, or a random secret generated once and kept in data_dir."""
    if settings.secret_key:
        return settings.secret_key.encode("utf-8")
    path = Path(settings.data_dir) / SECRET_FILE
    try:
        secret = path.read_bytes().strip()
        if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
            os.chmod(path, 0o600)  # a secret others could read is no secret
        return secret
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    candidate = secrets.token_urlsafe(48).encode("ascii")
    try:
        # O_EXCL: when two processes start at once, the first writer wins and both read its secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_when_written(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(candidate)
    return candidate


def _read_when_written(path: Path, attempts: int = 50) -> bytes:
    for _ in range(attempts):
        secret = path.read_bytes().strip()
        if secret:
            return secret
        time.sleep(0.01)
    raise RuntimeError(f"the secret key file {path} is empty")


def sign(secret: bytes, purpose: str, *parts: str, expires: int) -> str:
    """A hex HMAC-SHA256 over the purpose, the parts and the expiry (epoch seconds)."""
    message = "\n".join([purpose, *parts, str(expires)]).encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify(secret: bytes, purpose: str, *parts: str, expires: int, signature: str,
           now: float | None = None) -> None:
    """Raise SignatureInvalid or SignatureExpired unless `signature` signs these parts."""
    expected = sign(secret, purpose, *parts, expires=expires)
    if not hmac.compare_digest(expected, signature or ""):
        raise SignatureInvalid("the signature does not match")
    if (time.time() if now is None else now) > expires:
        raise SignatureExpired("the signature has expired")
