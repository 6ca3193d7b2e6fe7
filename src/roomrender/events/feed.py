"""One change feed per process and database.

A change is staged inside the transaction that makes it (`ChangeFeed.transaction`) and published
to this process's subscribers once, right after the commit; a rolled-back change is never
published. Other processes learn of it through a carrier:

- PostgreSQL: `NOTIFY`, issued inside the transaction (so it is delivered at commit, or never),
  and a listener thread on its own connection (`events.postgres`);
- SQLite: a slow safety poll, run only while another process has the same file open
  (`events.sqlite`); it cannot say what changed, so it asks subscribers to catch up (resync).

Subscribers are plain callbacks run on the publishing thread (a worker, a request thread, the
listener): they must only hand the change on (set an event, schedule a call on an event loop).
The carrier's thread runs only while someone subscribes, so a process nobody watches does nothing.
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, event

from roomrender.events.change import Change
from roomrender.events.postgres import PostgresCarrier
from roomrender.events.sqlite import sqlite_carrier

__all__ = ["Change", "ChangeFeed", "Doorbell", "Subscription", "feed_for"]

log = logging.getLogger("roomrender.events")


Callback = Callable[[Change], None]


class Carrier(Protocol):
    """Carries changes between processes (one per feed)."""

    def notify(self, connection: Connection, payloads: Sequence[str]) -> None:
        """Inside the transaction about to commit: tell other processes."""

    def start(self) -> None:
        """Start listening (idempotent); `ready` is set once changes from now on are heard."""

    def close(self) -> None:
        """Stop listening, subscribers or not (until the next `start`)."""

    @property
    def ready(self) -> threading.Event: ...


class Subscription:
    def __init__(self, feed: ChangeFeed, topic: str | None, callback: Callable[..., None]) -> None:
        self.feed = feed
        self.topic = topic  # None: a resync callback
        self.callback = callback

    def close(self) -> None:
        self.feed._unsubscribe(self)


class Doorbell:
    """Wakes a thread that waits for work: rung by the feed (a matching change, or a resync)."""

    def __init__(self) -> None:
        self._rung = threading.Event()
        self._subscriptions: list[Subscription] = []

    def ring(self, *_: Any) -> None:
        self._rung.set()

    def wait(self, timeout: float | None) -> bool:
        """Wait until rung or `timeout`; True if rung. A ring while the caller worked is kept
        for its next wait."""
        rung = self._rung.wait(timeout)
        self._rung.clear()
        return rung

    def take(self) -> bool:
        """Whether it rang since the last wait or take, without waiting."""
        rung = self._rung.is_set()
        if rung:
            self._rung.clear()
        return rung

    def ring_when_set(self, event: threading.Event) -> None:
        """Ring once `event` is set (a stop event), so a waiter never sleeps through it."""
        def ring_later() -> None:
            event.wait()
            self.ring()

        threading.Thread(target=ring_later, name="doorbell", daemon=True).start()

    def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions = []


class ChangeFeed:
    def __init__(self, db: Engine, carrier: Carrier | None = None) -> None:
        self.origin = uuid.uuid4().hex
        self._lock = threading.Lock()
        # Copied on write: publishers read them without the lock.
        self._by_topic: dict[str, tuple[Subscription, ...]] = {}
        self._resyncs: tuple[Subscription, ...] = ()
        self._local = threading.local()
        self.carrier = carrier if carrier is not None else _carrier_for(self, db)
        # The carrier's connection goes with its engine: disposing the engine (a process or a
        # test shutting down) stops the thread and closes its listening connection at once,
        # whoever still subscribes (a key cache listens for revocations for good).
        carrier_ref = weakref.ref(self.carrier) if self.carrier is not None else None

        def on_disposed(_engine: Engine) -> None:
            carrier_now = carrier_ref() if carrier_ref is not None else None
            if carrier_now is not None:
                carrier_now.close()

        event.listen(db, "engine_disposed", on_disposed)

    # -- writing --------------------------------------------------------------------------

    @contextmanager
    def transaction(self, db: Engine) -> Iterator[Connection]:
        """`db.begin()` whose staged changes are carried at commit and published after it."""
        staged: list[Change] = []
        outer = getattr(self._local, "staged", None)
        self._local.staged = staged
        try:
            with db.begin() as connection:
                yield connection
                if staged and self.carrier is not None:
                    self.carrier.notify(connection, [change.to_payload(self.origin)
                                                     for change in _unique(staged)])
        finally:
            self._local.staged = outer
        self.publish(_unique(staged))

    def stage(self, change: Change) -> None:
        """Publish `change` when the current `transaction` commits (at once outside one)."""
        staged: list[Change] | None = getattr(self._local, "staged", None)
        if staged is None:
            self.publish([change])
        else:
            staged.append(change)

    def publish(self, changes: Sequence[Change]) -> None:
        """Hand committed changes to this process's subscribers."""
        for change in changes:
            for subscription in self._by_topic.get(change.topic, ()):
                try:
                    subscription.callback(change)
                except Exception:
                    log.exception("a subscriber of %s failed", change.topic)

    def resync(self) -> None:
        """Tell subscribers that changes may have been missed (they read what they watch)."""
        for subscription in self._resyncs:
            try:
                subscription.callback()
            except Exception:
                log.exception("a resync subscriber failed")

    # -- subscribing ----------------------------------------------------------------------

    def subscribe(self, topic: str, callback: Callback) -> Subscription:
        subscription = Subscription(self, topic, callback)
        with self._lock:
            self._by_topic[topic] = (*self._by_topic.get(topic, ()), subscription)
        self._start_carrier()
        return subscription

    def on_resync(self, callback: Callable[[], None]) -> Subscription:
        subscription = Subscription(self, None, callback)
        with self._lock:
            self._resyncs = (*self._resyncs, subscription)
        self._start_carrier()
        return subscription

    def doorbell(self, topic: str, accept: Callable[[Change], bool] | None = None,
                 ready_timeout: float = 5.0) -> Doorbell:
        """A doorbell rung by changes of `topic` that `accept` takes (all by default) and by
        every resync. Returns once other processes' changes are heard (or after
        `ready_timeout`), so nothing committed after this call goes unnoticed."""
        bell = Doorbell()

        def on_change(change: Change) -> None:
            if accept is None or accept(change):
                bell.ring()

        bell._subscriptions = [self.subscribe(topic, on_change), self.on_resync(bell.ring)]
        self.wait_ready(ready_timeout)
        return bell

    def wait_ready(self, timeout: float = 5.0) -> bool:
        return self.carrier is None or self.carrier.ready.wait(timeout)

    @property
    def is_ready(self) -> bool:
        return self.carrier is None or self.carrier.ready.is_set()

    @property
    def subscribers(self) -> int:
        return sum(len(subscriptions) for subscriptions in self._by_topic.values()) + len(
            self._resyncs)

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription.topic is None:
                self._resyncs = tuple(s for s in self._resyncs if s is not subscription)
            else:
                kept = tuple(s for s in self._by_topic.get(subscription.topic, ())
                             if s is not subscription)
                if kept:
                    self._by_topic[subscription.topic] = kept
                else:
                    self._by_topic.pop(subscription.topic, None)

    def _start_carrier(self) -> None:
        if self.carrier is not None:
            self.carrier.start()


def _unique(changes: list[Change]) -> list[Change]:
    """Changes in order, each once (a transaction may stage the same wake-up several times)."""
    seen: list[Change] = []
    for change in changes:
        if change.data is None and any(change == other for other in seen):
            continue
        seen.append(change)
    return seen


def _carrier_for(feed: ChangeFeed, db: Engine) -> Carrier | None:
    backend = db.dialect.name
    if backend == "postgresql":
        return PostgresCarrier(weakref.ref(feed), db)
    if backend == "sqlite":
        return sqlite_carrier(weakref.ref(feed), db)
    return None


_FEEDS: weakref.WeakValueDictionary[str, ChangeFeed] = weakref.WeakValueDictionary()
_FEEDS_LOCK = threading.Lock()


def feed_for(db: Engine) -> ChangeFeed:
    """The process's feed for this database: every queue, outbox and watcher on it shares one."""
    key = db.url.render_as_string(hide_password=False)
    with _FEEDS_LOCK:
        feed = _FEEDS.get(key)
        if feed is None:
            feed = ChangeFeed(db)
            _FEEDS[key] = feed
        return feed
