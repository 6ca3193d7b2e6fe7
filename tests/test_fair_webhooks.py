"""Webhooks are delivered fairly across keys: a key whose receivers never answer cannot hold
another key's deliveries (issue 24, finding 4)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import delete

from roomrender.config import Settings
from roomrender.db.tables import webhook_attempts, webhook_messages
from roomrender.services import Services
from roomrender.webhooks.fairness import KeyShares
from tests.webhook_receiver import Receiver


class Silent:
    """A receiver that accepts connections and never answers (until closed)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.connections: list[socket.socket] = []
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The shipped timeout, concurrency and poll: the flood is measured as it would be served.
    return settings.model_copy(update={"allow_private_urls": True})


@pytest.fixture
def silent() -> Iterator[Silent]:
    receiver = Silent()
    yield receiver
    receiver.close()


def add_messages(services: Services, owner_id: str, url: str, count: int) -> None:
    with services.outbox.feed.transaction(services.db) as connection:
        for n in range(count):
            services.outbox.add(connection, job_id=f"job-{owner_id[:6]}-{n}", owner_id=owner_id,
                                event="job.succeeded", url=url, payload=f'{{"n": {n}}}',
                                first_attempt_at=time.time())


def test_a_good_receiver_is_called_at_once_while_another_key_floods(services, silent):
    with services.db.begin() as connection:
        connection.execute(delete(webhook_attempts))
        connection.execute(delete(webhook_messages))
    flooder, _ = services.keys.create("flooder")
    good, _ = services.keys.create("good")
    dispatcher = services.new_dispatcher()
    stop = threading.Event()
    loop = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    with Receiver() as receiver:
        add_messages(services, flooder.id, silent.url(), 64)
        loop.start()
        try:
            deadline = time.monotonic() + 5
            while len(silent.connections) < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)  # the flood holds what it can
            delays = []
            for n in range(3):
                added = time.monotonic()
                add_messages(services, good.id, receiver.url(f"/good{n}"), 1)
                while len(receiver.calls) <= n and time.monotonic() - added < 5:
                    time.sleep(0.01)
                delays.append(time.monotonic() - added)
            # Counted before the flood's receiver closes: closing ends its attempts, and the
            # dispatcher (until it sees `stop`) may open the next one.
            held = len(silent.connections)
        finally:
            stop.set()
            silent.close()  # the flood's attempts end now
            loop.join(15)
            dispatcher.close()
    assert [call.path for call in receiver.calls] == ["/good0", "/good1", "/good2"]
    assert max(delays) < 2.0, delays
    # The flooding key held no more than its share of the slots.
    assert held <= dispatcher.shares.per_key, held


def test_a_key_whose_receivers_keep_timing_out_gets_short_attempts_one_at_a_time():
    shares = KeyShares(concurrency=16, per_key=4, timeout=10.0, slow_timeout=2.0)
    flood = [(f"m{n}", "flooder") for n in range(10)]
    assert shares.pick(flood, 16) == ["m0", "m1", "m2", "m3"]
    for _ in range(2):
        shares.started("flooder")
        shares.finished("flooder", timed_out=True)
    assert shares.timeout_for("flooder") == 2.0
    assert shares.pick(flood, 16) == ["m0"]
    shares.started("flooder")
    assert "flooder" in shares.busy_owners()
    # Other keys keep their full share and deadline.
    assert shares.pick([("g0", "good"), ("g1", "good"), ("f", "flooder")], 16) == ["g0", "g1"]
    assert shares.timeout_for("good") == 10.0
    # An answer in time makes it an ordinary key again.
    shares.finished("flooder", timed_out=False)
    assert shares.timeout_for("flooder") == 10.0
