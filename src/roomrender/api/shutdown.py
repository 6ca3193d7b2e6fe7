"""Knowing, inside the app, that the server has begun to shut down.

uvicorn, on SIGTERM or SIGINT, stops accepting connections and waits (up to its
`timeout_graceful_shutdown`) for open responses to end before it runs the app's lifespan shutdown.
An event stream never ends by itself, so the app must learn of the signal earlier: `Draining`
chains a handler in front of the server's while the app runs. Event streams are then told at once
(`on_set`) and end, and `/readyz` answers 503 so a load balancer stops sending new requests.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from fastapi import Request

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Draining:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._listeners: list[Callable[[], None]] = []

    def on_set(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever this is set (from a signal handler too: it must only hand
        the news on)."""
        self._listeners.append(listener)

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        """The app (re)starts serving: a lifespan run after an earlier one's shutdown."""
        self._event.clear()

    def set(self) -> None:
        self._event.set()
        for listener in self._listeners:
            listener()

    def watch_signals(self) -> Callable[[], None]:
        """From now on SIGTERM and SIGINT set this first, then reach the server's handlers; the
        answer puts the handlers back. Only the main thread may set signal handlers; elsewhere
        (a server in a thread) this does nothing."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: FrameType | None) -> None:
            self.set()
            chained = previous.get(signum)
            if callable(chained):
                chained(signum, frame)
            elif chained == signal.SIG_DFL:  # no server handler: what the signal did before
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)

        for signum in SIGNALS:
            previous[signum] = signal.signal(signum, handler)

        def restore() -> None:
            for signum, chained in previous.items():
                if signal.getsignal(signum) is handler:
                    signal.signal(signum, chained)

        return restore


def shutting_down(request: Request) -> bool:
    """True once the server handling `request` has begun to shut down."""
    draining: Draining | None = getattr(request.app.state, "draining", None)
    return draining is not None and draining.is_set()
