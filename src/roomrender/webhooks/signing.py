"""Standard Webhooks signing: one `whsec_` secret per API key, rotatable with an overlap window.

The signature is `v1,` + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")); during an
overlap window the previous secret signs too and both go in `webhook-signature`, space-separated,
so a receiver still holding the old secret keeps verifying while it switches.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select, update
from standardwebhooks.webhooks import Webhook

from roomrender.db.tables import api_keys

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class SigningSecrets:
    current: str
    previous: str | None = None
    previous_expires_at: float | None = None

    def active(self, now: float | None = None) -> list[str]:
        """The secrets that sign now: the current one, and the previous one inside its window."""
        now = time.time() if now is None else now
        keys = [self.current]
        if self.previous and self.previous_expires_at is not None and self.previous_expires_at > now:
            keys.append(self.previous)
        return keys


def sign(secrets_: SigningSecrets, message_id: str, timestamp: int, body: str,
         now: float | None = None) -> str:
    """The `webhook-signature` header value."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return " ".join(Webhook(secret).sign(message_id, moment, body)
                    for secret in secrets_.active(now))


def signed_headers(secrets_: SigningSecrets, message_id: str, body: str,
                   now: float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (the timestamp is the attempt's)."""
    now = time.time() if now is None else now
    timestamp = int(now)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets_, message_id, timestamp, body, now),
    }


def _from_row(row: object) -> SigningSecrets:
    mapping = row._mapping  # type: ignore[attr-defined]
    return SigningSecrets(mapping["webhook_secret"], mapping["webhook_secret_previous"],
                          mapping["webhook_secret_previous_expires_at"])


def secrets_for(connection: Connection, owner_ids: list[str]) -> dict[str, SigningSecrets]:
    """The signing secrets of these keys, created on first use."""
    columns = (api_keys.c.id, api_keys.c.webhook_secret, api_keys.c.webhook_secret_previous,
               api_keys.c.webhook_secret_previous_expires_at)
    rows = connection.execute(select(*columns).where(api_keys.c.id.in_(owner_ids))).all()
    missing = [row.id for row in rows if row.webhook_secret is None]
    for owner_id in missing:
        # Guarded, so two processes creating the first secret at once agree on one.
        connection.execute(update(api_keys)
                           .where(api_keys.c.id == owner_id, api_keys.c.webhook_secret.is_(None))
                           .values(webhook_secret=new_secret()))
    if missing:
        rows = connection.execute(select(*columns).where(api_keys.c.id.in_(owner_ids))).all()
    return {row.id: _from_row(row) for row in rows}


class SecretStore:
    """Reading and rotating a key's webhook secret: the only writer of the keys' secret columns."""

    def __init__(self, db: Engine, overlap_seconds: float) -> None:
        self.db = db
        self.overlap_seconds = overlap_seconds

    def get(self, owner_id: str) -> SigningSecrets:
        with self.db.begin() as connection:
            return secrets_for(connection, [owner_id])[owner_id]

    def for_owners(self, owner_ids: list[str]) -> dict[str, SigningSecrets]:
        """The secrets of these keys (created on first use); a deleted key has none."""
        with self.db.begin() as connection:
            return secrets_for(connection, owner_ids)

    def rotate(self, owner_id: str, overlap_seconds: float | None = None,
               now: float | None = None) -> SigningSecrets:
        """A new current secret; the old one keeps signing for `overlap_seconds`."""
        now = time.time() if now is None else now
        overlap = self.overlap_seconds if overlap_seconds is None else overlap_seconds
        with self.db.begin() as connection:
            old = secrets_for(connection, [owner_id])[owner_id]
            connection.execute(update(api_keys).where(api_keys.c.id == owner_id).values(
                webhook_secret=new_secret(),
                webhook_secret_previous=old.current if overlap > 0 else None,
                webhook_secret_previous_expires_at=now + overlap if overlap > 0 else None,
            ))
            return secrets_for(connection, [owner_id])[owner_id]
