"""How `roomrender serve` runs uvicorn against hostile clients: the h11 protocol with a cap on a
request head's size, a deadline for a whole request head, short idle keep-alives and a cap on
open connections. What uvicorn cannot bound (a body sent slowly once its head arrived, headers
counted rather than sized) is for the reverse proxy in front (docs/deploy.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# A request head (request line and headers) larger than this is answered 400 and closed.
MAX_HEAD_BYTES = 64 * 1024
# A connection has this long, from opening or from its last answer, to send a whole head.
HEAD_SECONDS = 10.0
IDLE_KEEP_ALIVE_SECONDS = 5
MAX_CONNECTIONS = 2048


class HeadDeadlineH11(H11Protocol):
    """uvicorn's h11 protocol, and a connection that sends nothing, or drips its head a byte at a
    time, is closed `HEAD_SECONDS` after it opened or got its last answer (nginx's
    client_header_timeout)."""

    head_seconds = HEAD_SECONDS
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_deadline()  # the head is in: the app's turn

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_timer = self.loop.call_later(self.head_seconds, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def uvicorn_limits() -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run`/`uvicorn.Config` that bound what clients hold."""
    return {"http": HeadDeadlineH11, "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
            "timeout_keep_alive": IDLE_KEEP_ALIVE_SECONDS, "limit_concurrency": MAX_CONNECTIONS}
