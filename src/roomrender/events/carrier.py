"""The part every carrier shares: a background thread that runs only while the feed has
subscribers (it stops after `IDLE_CARRIER_SECONDS` without any, and starts again on demand).
The thread holds the feed weakly: a feed nobody uses any more is collected, and its thread ends."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Connection

from roomrender.events.change import Change


class Listener(Protocol):
    """What a carrier needs of its feed."""

    @property
    def origin(self) -> str: ...
    @property
    def subscribers(self) -> int: ...
    def publish(self, changes: Sequence[Change]) -> None: ...
    def resync(self) -> None: ...


log = logging.getLogger("roomrender.events")

IDLE_CARRIER_SECONDS = 10.0


class ThreadCarrier:
    name = "carrier"

    def __init__(self, feed: weakref.ref[Listener]) -> None:
        self._feed = feed
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle_since: float | None = None
        self._ready = threading.Event()
        self._closed = False

    @property
    def ready(self) -> threading.Event:
        return self._ready

    def notify(self, connection: Connection, payloads: Sequence[str]) -> None:
        """Nothing to do inside the transaction (SQLite: other processes poll)."""

    def start(self) -> None:
        with self._lock:
            self._closed = False
            self._idle_since = None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"feed-{self.name}",
                                                daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop the thread at its next wait (its database's engine was disposed), subscribers or
        not; a later `start` begins again."""
        with self._lock:
            self._closed = True

    def should_stop(self) -> bool:
        """True (and the thread forgotten, so the next `start` makes a new one) once the feed
        is gone or closed, or has had no subscriber for a while. Called by the thread between
        waits."""
        feed = self._feed()
        with self._lock:
            if self._closed:
                self._thread = None
                self._ready.clear()
                return True
            if feed is not None and feed.subscribers:
                self._idle_since = None
                return False
            now = time.monotonic()
            if feed is not None and (self._idle_since is None
                                     or now - self._idle_since < IDLE_CARRIER_SECONDS):
                self._idle_since = self._idle_since or now
                return False
            self._thread = None
            self._ready.clear()
            return True

    def _run(self) -> None:
        raise NotImplementedError
