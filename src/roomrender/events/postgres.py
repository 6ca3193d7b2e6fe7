"""PostgreSQL carries changes between processes: `pg_notify` inside the transaction (delivered at
commit, dropped on rollback), and a listener thread on a connection of its own.

The channel is named after the connection's schema, so deployments (or tests) sharing a database
in different schemas do not hear each other. After a lost connection the listener reconnects and
asks subscribers to catch up (resync): notifications sent meanwhile are gone."""

from __future__ import annotations

import hashlib
import logging
import time
import weakref
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine

from roomrender.events.carrier import Listener, ThreadCarrier
from roomrender.events.change import Change

log = logging.getLogger("roomrender.events")

# How often the listener looks up from its connection (to stop when nobody subscribes).
LISTEN_SLICE_SECONDS = 1.0


def channel_name(schema: str) -> str:
    name = f"roomrender_{schema}"
    if len(name.encode()) > 63:  # PostgreSQL's identifier limit
        name = f"roomrender_{hashlib.sha256(schema.encode()).hexdigest()[:32]}"
    return name


class PostgresCarrier(ThreadCarrier):
    name = "postgres"

    def __init__(self, feed: weakref.ref[Listener], db: Engine) -> None:
        super().__init__(feed)
        args, kwargs = db.dialect.create_connect_args(db.url)
        kwargs.pop("context", None)  # SQLAlchemy's type adapters; the listener needs none
        self._connect_args: tuple[list[Any], dict[str, Any]] = (list(args), dict(kwargs))
        self._channel: str | None = None

    def notify(self, connection: Connection, payloads: Sequence[str]) -> None:
        if self._channel is None:
            self._channel = channel_name(str(connection.exec_driver_sql(
                "SELECT current_schema()").scalar()))
        sql = "SELECT " + ", ".join(["pg_notify(%s, %s)"] * len(payloads))
        connection.exec_driver_sql(sql, tuple(value for payload in payloads
                                              for value in (self._channel, payload)))

    def _run(self) -> None:
        args, kwargs = self._connect_args
        connected_before, failing = False, False
        delay = 0.5
        while not self.should_stop():
            try:
                with psycopg.connect(*args, **kwargs, autocommit=True) as connection:
                    row = connection.execute("SELECT current_schema()").fetchone()
                    channel = channel_name(str(row[0] if row else "public"))
                    connection.execute(f'LISTEN "{channel}"')
                    self._ready.set()
                    if failing:
                        log.warning("listening for changes again")
                    delay, failing = 0.5, False
                    feed = self._feed()
                    if connected_before and feed is not None:
                        feed.resync()  # what was sent while we were away is lost
                    del feed
                    connected_before = True
                    while not self.should_stop():
                        for notice in connection.notifies(timeout=LISTEN_SLICE_SECONDS):
                            feed = self._feed()
                            if feed is None:
                                return
                            origin, change = Change.from_payload(notice.payload)
                            if origin != feed.origin:  # our own were published at commit
                                feed.publish([change])
                            del feed
                    return
            except Exception as failure:
                self._ready.clear()
                if not failing:  # once per outage, not once per try
                    log.warning("listening for changes failed (%s); retrying, less often, until "
                                "it passes", failure)
                failing = True
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
