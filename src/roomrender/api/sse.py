"""Server-Sent Events of a job, fed by a watch (`roomrender.jobs.watch`).

A plain ASGI response: one coroutine per stream, and no read, thread or poll per event; a
keep-alive comment goes out when a stream has been silent for between three quarters of
`keepalive_seconds` and all of it (wall clock; drawn afresh each time, so thousands of streams
opened together do not send their keep-alives in one burst, and none waits longer than
`keepalive_seconds`);
the stream ends with the job, when the client leaves (noticed at once, not at the next write),
or when the server begins to shut down (`Watch.stop_serving`: a `retry` hint, so the client
reconnects to another process and gets the job's current state first), or at once when its API
key is revoked (`revoke`: a last comment says so).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from roomrender.canonical.models import Job
from roomrender.jobs.watch import JobUpdate, Watch

KEEPALIVE = b": keep-alive\n\n"
# A keep-alive's silence, as a share of `keepalive_seconds`: at least this much, at most all.
KEEPALIVE_SPREAD = 0.75
FAREWELL = b"retry: 1000\n: the server is shutting down; reconnect to follow the job\n\n"
REVOKED = b": the API key of this stream was revoked\n\n"


def sse(event: str, data: str) -> bytes:
    """One event; `data` is one line of JSON."""
    return f"event: {event}\ndata: {data}\n\n".encode()


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStream(Response):
    media_type = "text/event-stream"

    def __init__(self, watch: Watch, render: Callable[[JobUpdate], bytes],
                 end: Callable[[Job], bytes], keepalive_seconds: float, *,
                 farewell: bytes = FAREWELL, on_close: Callable[[], None] | None = None) -> None:
        """`render`: what an update sends (may be nothing); `end`: what follows the job's last
        update; `on_close`: called once the stream is over, however it ended."""
        # Not Response.__init__: it would announce a Content-Length.
        self.watch = watch
        self.render_update = render
        self.end = end
        self.keepalive_seconds = keepalive_seconds
        self.farewell = farewell
        self.on_close = on_close
        self.revoked = False
        self.status_code = 200
        self.background = None
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
                            (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = self.watch
        shortest = self.keepalive_seconds * KEEPALIVE_SPREAD
        longest = self.keepalive_seconds
        left = asyncio.ensure_future(_until_disconnect(receive))
        left.add_done_callback(lambda _: watch.close())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while True:
                update = await watch.next(random.uniform(shortest, longest))
                if update is None:
                    if watch.draining and not watch.closed:
                        await send(_body(self.farewell, more=False))
                        return
                    if watch.closed:
                        if self.revoked:
                            await send(_body(REVOKED, more=False))
                        return
                    await send(_body(KEEPALIVE, more=True))
                    continue
                body = self.render_update(update)
                if update.job.status.is_terminal:
                    await send(_body(body + self.end(update.job), more=False))
                    return
                if body:
                    await send(_body(body, more=True))
        finally:
            left.cancel()
            watch.close()
            if self.on_close is not None:
                self.on_close()
            if self.background is not None:
                await self.background()


    def revoke(self) -> None:
        """Its key was revoked: the stream ends now (call on its event loop)."""
        self.revoked = True
        self.watch.close()


class StreamEndpoint:
    """A stream's route as a plain ASGI endpoint, answered ahead of the FastAPI routes (a dialect's
    `leading_routes`; its FastAPI route documents it). An open stream keeps its whole call stack
    alive, and Python's garbage collector scans every object of it at each full collection (with
    5,000 streams open, a pause of a third of a second on a 2-core VM): this way the stack is 6
    frames shorter and a stream holds 132 objects instead of 162, and opening one skips FastAPI's
    dependency solving. Errors before the stream starts are raised, and rendered by the app's
    handlers, as on any route."""

    def __init__(self, open_stream: Callable[[Request], Awaitable[EventStream]]) -> None:
        self.open_stream = open_stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = await self.open_stream(Request(scope, receive))
        await stream(scope, receive, send)


def _body(body: bytes, *, more: bool) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": more}
