"""A standalone worker's or dispatcher's own HTTP port: `/metrics`, `/healthz` and `/readyz`.

The same probes as the API's (`api/ops.py`), from what this process knows: its engine's warm-up
(`warmup.Warmup`). `/healthz` answers from the start, while the engine warms up; `/readyz` is
503, saying what is warming, until the warm-up ends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from roomrender.warmup import Warmup

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def probes_app(warmup: Warmup) -> WsgiApp:
    metrics = make_wsgi_app(REGISTRY)

    def answer(start_response: StartResponse, status: int, body: dict[str, Any]) -> list[bytes]:
        payload = json.dumps(body).encode()
        start_response(f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                       [("Content-Type", "application/json"),
                        ("Content-Length", str(len(payload)))])
        return [payload]

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        report = warmup.report()
        if path == "/healthz":
            if report.alive:
                return answer(start_response, 200, {"status": "ok"})
            return answer(start_response, 503, {"status": "unhealthy", "reason": report.describe(),
                                                "code": "warm_up_failed",
                                                "warm_up": report.as_json()})
        if path == "/readyz":
            if report.ready:
                return answer(start_response, 200, {"status": "ready", "warm_up": report.as_json()})
            return answer(start_response, 503, {
                "status": "warming" if report.alive else "unavailable", "reason": report.describe(),
                "code": "warming_up" if report.alive else "warm_up_failed",
                "warm_up": report.as_json()})
        scrape: Iterable[bytes] = metrics(environ, start_response)
        return scrape

    return app


def serve_probes(port: int, host: str, warmup: Warmup) -> ThreadingWSGIServer:
    """Serve `probes_app` on host:port from a daemon thread; returns the server (port 0: any)."""
    server = make_server(host, port, probes_app(warmup), ThreadingWSGIServer,
                         handler_class=_SilentHandler)
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
    return server
