"""API keys: only a SHA-256 of each key is stored; credits are counted per key."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass

from limits import parse_many
from sqlalchemy import Engine, bindparam, func, insert, select, update

from roomrender.accounts.credits import CreditLedger
from roomrender.db.tables import api_keys

KEY_PREFIX = "rr_"
# A revoked key stops working within this many seconds on every process.
AUTH_CACHE_SECONDS = 2.0


_KEY_BY_HASH = select(api_keys).where(api_keys.c.key_hash == bindparam("digest"))


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    credits_granted: int | None
    credits_used: int
    created_at: float
    revoked_at: float | None
    # This key's limits; None: the server's (ROOMRENDER_RATE_LIMIT, ROOMRENDER_MAX_ACTIVE_JOBS).
    rate_limit: str | None = None
    max_active_jobs: int | None = None

    @property
    def credits_available(self) -> int | None:
        if self.credits_granted is None:
            return None
        return max(0, self.credits_granted - self.credits_used)


def check_rate_limit(text: str) -> None:
    """ValueError unless `text` is a rate limit the `limits` library reads."""
    try:
        parsed = parse_many(text)
    except ValueError as bad:
        raise ValueError(f"{text!r} is not a rate limit such as 100/second or "
                         "10/second;1000/hour") from bad
    if not parsed:
        raise ValueError(f"{text!r} is not a rate limit such as 100/second")


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _row_to_key(row: object) -> ApiKey:
    mapping = row._mapping  # type: ignore[attr-defined]
    return ApiKey(mapping["id"], mapping["name"], mapping["prefix"], mapping["credits_granted"],
                  mapping["credits_used"], mapping["created_at"], mapping["revoked_at"],
                  mapping["rate_limit"], mapping["max_active_jobs"])


class KeyStore:
    def __init__(self, db: Engine, ledger: CreditLedger) -> None:
        self.db = db
        self.ledger = ledger
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()
        self._prefixes: dict[str, str] = {}

    def create(self, name: str, credits: int | None = None, *, rate_limit: str | None = None,
               max_active_jobs: int | None = None) -> tuple[ApiKey, str]:
        """A new key and its plaintext, which is shown once and never stored. `rate_limit` is
        written as the `limits` library reads it ("100/second", "5/second;1000/hour")."""
        if rate_limit is not None:
            check_rate_limit(rate_limit)
        if max_active_jobs is not None and max_active_jobs < 1:
            raise ValueError("max_active_jobs must be at least 1")
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = uuid.uuid4().hex
        with self.db.begin() as connection:
            connection.execute(insert(api_keys).values(
                id=key_id, name=name, key_hash=hash_key(plaintext), prefix=plaintext[:10],
                created_at=time.time(), revoked_at=None, rate_limit=rate_limit,
                max_active_jobs=max_active_jobs,
            ))
            self.ledger.open(connection, key_id, credits)
        return self.get(key_id), plaintext

    def get(self, key_id: str) -> ApiKey:
        with self.db.connect() as connection:
            row = connection.execute(select(api_keys).where(api_keys.c.id == key_id)).one()
        return _row_to_key(row)

    def prefix_of(self, key_id: str) -> str | None:
        """The key's public prefix (what logs and metrics name it by); cached, it never changes."""
        prefix = self._prefixes.get(key_id)
        if prefix is None:
            with self.db.connect() as connection:
                prefix = connection.execute(
                    select(api_keys.c.prefix).where(api_keys.c.id == key_id)).scalar()
            if prefix is not None:
                self._prefixes[key_id] = prefix
        return prefix

    def list(self) -> list[ApiKey]:
        with self.db.connect() as connection:
            rows = connection.execute(select(api_keys).order_by(api_keys.c.created_at)).all()
        return [_row_to_key(row) for row in rows]

    def count(self) -> int:
        with self.db.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(api_keys)).scalar_one())

    def revoke(self, key_id_or_prefix: str) -> ApiKey | None:
        with self.db.begin() as connection:
            row = connection.execute(select(api_keys).where(
                (api_keys.c.id == key_id_or_prefix) | (api_keys.c.prefix == key_id_or_prefix)
            )).first()
            if row is None:
                return None
            connection.execute(update(api_keys).where(api_keys.c.id == row.id)
                               .values(revoked_at=time.time()))
        with self._lock:
            self._cache.clear()
        return self.get(row.id)

    def cached(self, plaintext: str) -> tuple[bool, ApiKey | None]:
        """(True, key-or-None) when `plaintext` was looked up moments ago; no I/O."""
        cached = self._cache.get(hash_key(plaintext))
        if cached is not None and time.monotonic() - cached[0] < AUTH_CACHE_SECONDS:
            return True, cached[1]
        return False, None

    def authenticate(self, plaintext: str | None) -> ApiKey | None:
        """The live key for `plaintext`, or None. Looked up by hash; briefly cached."""
        if not plaintext:
            return None
        hit, key = self.cached(plaintext)
        if hit:
            return key
        digest = hash_key(plaintext)
        now = time.monotonic()
        with self.db.connect() as connection:
            row = connection.execute(_KEY_BY_HASH, {"digest": digest}).first()
        key = _row_to_key(row) if row is not None and row.revoked_at is None else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, key)
        return key
