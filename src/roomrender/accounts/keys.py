"""API keys: only a SHA-256 of each key is stored; credits are counted per key.

A revocation is published on the change feed (topic `keys`, the key's id) in the transaction
that makes it: every process that authenticates forgets its cached lookups at once (PostgreSQL:
NOTIFY; SQLite: in this process at once, in others at the feed's safety poll, 1 s), and whoever
follows revocations (`on_revoked`: the open event streams) hears of it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from limits import parse_many
from sqlalchemy import Engine, bindparam, func, insert, select, update

from roomrender.accounts.credits import CreditLedger
from roomrender.db.tables import api_keys
from roomrender.events.feed import Change, ChangeFeed, Subscription, feed_for

KEY_PREFIX = "rr_"
# A lookup is kept this long; a revocation (heard on the change feed) forgets them all at once.
AUTH_CACHE_SECONDS = 2.0
# On the change feed: a key was revoked (its id).
KEYS_TOPIC = "keys"


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
    def __init__(self, db: Engine, ledger: CreditLedger, feed: ChangeFeed | None = None) -> None:
        self.db = db
        self.ledger = ledger
        self.feed = feed or feed_for(db)
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()
        self._prefixes: dict[str, str] = {}
        # Bumped by every revocation heard: a lookup read before it is not cached.
        self._generation = 0
        self._listening: tuple[Subscription, ...] = ()

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
        with self.feed.transaction(self.db) as connection:
            row = connection.execute(select(api_keys).where(
                (api_keys.c.id == key_id_or_prefix) | (api_keys.c.prefix == key_id_or_prefix)
            )).first()
            if row is None:
                return None
            connection.execute(update(api_keys).where(api_keys.c.id == row.id)
                               .values(revoked_at=time.time()))
            self.feed.stage(Change(KEYS_TOPIC, row.id))
        self._forget()
        return self.get(row.id)

    def revoked_among(self, key_ids: Collection[str]) -> Sequence[str]:
        """Those of `key_ids` that are revoked (or no longer exist)."""
        wanted = sorted(set(key_ids))
        if not wanted:
            return []
        with self.db.connect() as connection:
            live = set(connection.execute(select(api_keys.c.id).where(
                api_keys.c.id.in_(wanted), api_keys.c.revoked_at.is_(None))).scalars())
        return [key_id for key_id in wanted if key_id not in live]

    def on_revoked(self, callback: Callable[[str], None],
                   followed: Callable[[], Collection[str]]) -> Callable[[], None]:
        """Call `callback(key_id)` (on the feed's thread) when a key is revoked, in any process.
        When changes may have been missed (a resync), the `followed` keys are read again and
        each revoked one reported. Returns the call that stops it."""
        def on_resync() -> None:
            for key_id in self.revoked_among(followed()):
                callback(key_id)

        subscriptions = [self.feed.subscribe(KEYS_TOPIC, lambda change: callback(change.key)),
                         self.feed.on_resync(on_resync)]

        def stop() -> None:
            for subscription in subscriptions:
                subscription.close()

        return stop

    def _listen(self) -> None:
        """Forget cached lookups whenever a revocation is heard (from the first lookup on)."""
        with self._lock:
            if self._listening:
                return
            self._listening = (self.feed.subscribe(KEYS_TOPIC, self._forget),
                               self.feed.on_resync(self._forget))

    def _forget(self, *_: object) -> None:
        with self._lock:
            self._generation += 1
            self._cache.clear()

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
        if not self._listening:
            self._listen()
        hit, key = self.cached(plaintext)
        if hit:
            return key
        digest = hash_key(plaintext)
        now = time.monotonic()
        generation = self._generation
        with self.db.connect() as connection:
            row = connection.execute(_KEY_BY_HASH, {"digest": digest}).first()
        key = _row_to_key(row) if row is not None and row.revoked_at is None else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            if generation == self._generation:  # no revocation heard while reading
                self._cache[digest] = (now, key)
        return key
