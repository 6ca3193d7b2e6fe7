"""SQLite has no NOTIFY: changes reach this process's subscribers directly, and other processes
sharing the file are noticed by a slow safety poll, which runs only while one exists.

Whether another process has the file open is told by POSIX record locks on a file beside it:
each process holds a shared lock; a process that can turn its own into an exclusive one is alone.
While not alone, `PRAGMA data_version` (which changes when another connection commits) is read
every `POLL_SECONDS`; when it changed, subscribers are asked to catch up (resync).

A process that commits changes while not alone also touches that file (its mtime is the mark), so
a change made by a process that came and went between two polls (`roomrender keys revoke`) is
not missed: the poll resyncs when the mark moved, alone or not (and once more at the next poll,
since the mark is made just before the commit)."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence

from sqlalchemy import Connection, Engine

from roomrender.events.carrier import Listener, ThreadCarrier

try:
    import fcntl

    _POSIX = True
except ImportError:  # pragma: no cover - not POSIX: assume company, and poll
    _POSIX = False

log = logging.getLogger("roomrender.events")

POLL_SECONDS = 1.0

# One descriptor per lock file and process: closing any descriptor of a file drops all of the
# process's locks on it, so feeds of one process share it.
_HELD: dict[str, list[int]] = {}
_HELD_LOCK = threading.Lock()


class Neighbours:
    """Whether other processes have this database open (those that built a change feed on it)."""

    def __init__(self, database: str) -> None:
        self.path = os.path.abspath(database) + "-feed"
        self._fd: int | None = None
        if not _POSIX:
            return
        with _HELD_LOCK:
            held = _HELD.get(self.path)
            if held is None:
                # Private like the database beside it (its processes run as one user).
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.lockf(fd, fcntl.LOCK_SH)
                held = _HELD[self.path] = [fd, 0]
            held[1] += 1
            self._fd = held[0]
        weakref.finalize(self, _release, self.path)

    def mark(self) -> None:
        """Tell the processes sharing the file that changes are being committed."""
        if self._fd is not None and self.others():
            try:
                os.utime(self.path)
            except OSError:
                log.warning("cannot mark %s", self.path)

    def marked(self) -> int:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return 0

    def others(self) -> bool:
        if self._fd is None:  # not POSIX: assume company
            return True
        with _HELD_LOCK:
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.lockf(self._fd, fcntl.LOCK_SH)
            return False


def _release(path: str) -> None:
    with _HELD_LOCK:
        held = _HELD.get(path)
        if held is None:
            return
        held[1] -= 1
        if held[1] <= 0:
            del _HELD[path]
            os.close(held[0])


class SqliteProbe(ThreadCarrier):
    name = "sqlite"

    def __init__(self, feed: weakref.ref[Listener], database: str,
                 poll_seconds: float = POLL_SECONDS) -> None:
        super().__init__(feed)
        self.database = database
        self.poll_seconds = poll_seconds
        self.neighbours = Neighbours(database)

    def notify(self, connection: Connection, payloads: Sequence[str]) -> None:
        if payloads:
            self.neighbours.mark()

    def _run(self) -> None:
        self._ready.set()  # our own changes are published in-process from the start
        try:
            connection = sqlite3.connect(self.database, check_same_thread=False)
        except sqlite3.Error:
            log.exception("the safety poll cannot open %s", self.database)
            return
        last: int | None = None
        last_mark, again = self.neighbours.marked(), False
        try:
            while not self.should_stop():
                time.sleep(self.poll_seconds)
                mark = self.neighbours.marked()
                moved = mark != last_mark
                marked, again, last_mark = moved or again, moved, mark
                if not self.neighbours.others():
                    last = None
                    if marked:
                        self._resync()
                    continue
                try:
                    version = int(connection.execute("PRAGMA data_version").fetchone()[0])
                except sqlite3.Error:
                    log.exception("the safety poll failed")
                    continue
                if version != last or marked:
                    feed = self._feed()
                    if feed is not None:
                        feed.resync()
                    del feed
                last = version
        finally:
            connection.close()

    def _resync(self) -> None:
        feed = self._feed()
        if feed is not None:
            feed.resync()


def sqlite_carrier(feed: weakref.ref[Listener], db: Engine) -> SqliteProbe | None:
    database = db.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return SqliteProbe(feed, database)
