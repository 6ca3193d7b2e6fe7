"""Limits on what one client can take, before a route runs: the size of a request body (cut off
while it streams in, before authentication and parsing), and requests per key per second.

Both answer in the dialect's own error shape (`DialectErrors`, on `app.state`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage as LimitsStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roomrender.accounts.keys import ApiKey
from roomrender.api.auth import live_key
from roomrender.canonical.errors import BodyTooLarge, RateLimited, Unauthorized

log = logging.getLogger("roomrender.api")


class BodyLimit:
    """ASGI middleware: a body declared or grown past `max_bytes` is answered 413
    (`body_too_large`) at once; chunked bodies and multipart forms alike, every route."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        over = started = False

        async def capped_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise self._error()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # whatever the app answers to a cut body, the answer is the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._refuse(scope, receive, send)

    def _error(self) -> BodyTooLarge:
        return BodyTooLarge(f"the request body is larger than {self.max_bytes / 1_000_000:g} MB",
                            details={"max_bytes": self.max_bytes})

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = scope["app"].state.dialect_errors.render(request, self._error())
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


# Every route that reads a body takes a key, but Luw's signed PUT (its signature authenticates it,
# from the query, before it reads).
KEYED_METHODS = frozenset({"POST", "PATCH"})


class KeyBeforeBody:
    """ASGI middleware: a POST or PATCH whose headers present no live key is answered 401, in
    its dialect's shape, before a byte of its body is read, and its connection closed, so
    unauthenticated bodies cost neither memory nor time. The route authenticates again (the key
    is in the cache by then) and applies the key's rate limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in KEYED_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            await live_key(request)
        except Unauthorized as refused:
            response = scope["app"].state.dialect_errors.render(request, refused)
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else 1 << 62
    return None


class RequestRates:
    """Requests per key (`ROOMRENDER_RATE_LIMIT`, or the key's own), counted in a `limits`
    store: memory (this process) or Redis, shared by every API process."""

    def __init__(self, default: str, storage_url: str) -> None:
        self.default = parse_many(default) if default.strip() else []
        self.storage_url = _async_url(storage_url)
        self._parsed: dict[str, list[RateLimitItem]] = {}
        self._store_up = True
        self._new_storage()  # a URL no store answers to stops the server at start
        # One client per event loop: an async Redis connection belongs to the loop it was made on.
        self._strategies: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                                    SlidingWindowCounterRateLimiter] = (
            weakref.WeakKeyDictionary())

    def limits_of(self, key: ApiKey) -> list[RateLimitItem]:
        if not key.rate_limit:
            return self.default
        parsed = self._parsed.get(key.rate_limit)
        if parsed is None:
            parsed = self._parsed[key.rate_limit] = parse_many(key.rate_limit)
        return parsed

    def _strategy(self) -> SlidingWindowCounterRateLimiter:
        loop = asyncio.get_running_loop()
        strategy = self._strategies.get(loop)
        if strategy is None:
            strategy = self._strategies[loop] = SlidingWindowCounterRateLimiter(self._new_storage())
        return strategy

    def _new_storage(self) -> LimitsStorage:
        # Redis through redis-py (a dependency already), not limits' default coredis.
        scheme = self.storage_url.split(":", 1)[0]
        options = {"implementation": "redispy"} if "redis" in scheme else {}
        storage: Any = storage_from_string(self.storage_url, **options)
        assert isinstance(storage, LimitsStorage)
        return storage

    async def check(self, key: ApiKey) -> None:
        """Count one request of `key`; RateLimited (with when to retry) past its limit."""
        items = self.limits_of(key)
        if not items:
            return
        try:
            strategy = self._strategy()
            for item in items:
                if not await strategy.hit(item, "key", key.id):
                    stats = await strategy.get_window_stats(item, "key", key.id)
                    break
            else:
                self._store_answers(True)
                return
        except Exception as broken:
            # The store is down: requests pass uncounted rather than the whole API failing.
            self._store_answers(False, broken)
            return
        self._store_answers(True)
        raise RateLimited(
            f"this key is limited to {item.amount} requests per {item.get_expiry()} s; retry later",
            retry_after=max(1.0, stats.reset_time - time.time()), details={"limit": str(item)})

    def _store_answers(self, answers: bool, problem: Exception | None = None) -> None:
        """Log once when the store stops answering, and once when it is back."""
        if answers == self._store_up:
            return
        self._store_up = answers
        if answers:
            log.warning("the rate-limit store %s answers again", self.storage_url)
        else:
            log.warning("the rate-limit store %s does not answer (%s); requests pass uncounted",
                        self.storage_url, problem)


def _async_url(url: str) -> str:
    """The `limits` storage URL of its asyncio implementation."""
    return url if url.startswith("async+") else f"async+{url}"


class StreamSlots:
    """Open event streams per key on this process: each holds a connection and some memory until
    its job ends, so one key must not open thousands. A stream that `follow`s its key is closed
    at once when the key is revoked (`revoked`, told by the change feed from any thread)."""

    def __init__(self, per_key: int) -> None:
        self.per_key = max(1, per_key)
        self._open: dict[str, int] = {}
        self._closers: dict[str, list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]]] = {}

    def follow(self, key_id: str, close: Callable[[], None]) -> None:
        """Call `close` (on this event loop) if the key is revoked while the stream is open."""
        self._closers.setdefault(key_id, []).append((asyncio.get_running_loop(), close))

    def followed(self) -> list[str]:
        """The keys with streams open (read again when revocations may have been missed)."""
        return list(self._closers)

    def revoked(self, key_id: str) -> None:
        """The key was revoked: its open streams close now. Safe from any thread."""
        for loop, close in list(self._closers.get(key_id, ())):
            try:
                loop.call_soon_threadsafe(close)
            except RuntimeError:  # that loop is closed: its stream is over
                pass

    def take(self, key_id: str) -> None:
        """RateLimited when the key has `per_key` streams open already; else one more is open
        (give it back with `give_back`)."""
        if self._open.get(key_id, 0) >= self.per_key:
            raise RateLimited(f"this key has {self.per_key} event streams open already; close "
                              "one, or poll the job instead", code="too_many_streams",
                              retry_after=5.0)
        self._open[key_id] = self._open.get(key_id, 0) + 1

    def give_back(self, key_id: str, close: Callable[[], None] | None = None) -> None:
        if close is not None:
            kept = [entry for entry in self._closers.get(key_id, ()) if entry[1] != close]
            if kept:
                self._closers[key_id] = kept
            else:
                self._closers.pop(key_id, None)
        left = self._open.get(key_id, 1) - 1
        if left > 0:
            self._open[key_id] = left
        else:
            self._open.pop(key_id, None)
