"""Per-request metrics and log fields: an ASGI middleware around every route.

Requests are counted by dialect (the plug whose route answered; for a path no route matched,
the plug that owns its prefix), route template (`/v1/jobs/{job_id}`, never the raw path), method
and status, and by API key, named by its public prefix (never the
key): labels stay few whatever clients send. Latency is the time to the response's headers, so
an event stream or a large download counts what the server did, not how long the client read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roomrender import logs, metrics
from roomrender.api.plug import DialectPlug

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Where `require_key` leaves the caller's key prefix (`request.state`).
KEY_PREFIX_STATE = "key_prefix"
NO_KEY = "none"
UNMATCHED = "unmatched"


class RequestTelemetry:
    def __init__(self, app: ASGIApp, plugs: Sequence[DialectPlug]) -> None:
        self.app = app
        # Route template -> dialect; and, for paths no route matched, (prefix, dialect) pairs,
        # longest first: a plug's own prefixes, else those of its routers (native: /v1).
        self.by_route: dict[str, str] = {}
        # The plugs' routes, to name the route of a request answered before routing.
        self.routes: list[Any] = []
        owned: list[tuple[str, str]] = []
        for plug in plugs:
            for route in [*plug.leading_routes, *(r for router in plug.routers for r in router.routes)]:
                path = getattr(route, "path", None)
                if path:
                    self.by_route.setdefault(path, plug.name)
                    self.routes.append(route)
            prefixes = [*([plug.prefix] if plug.prefix else []), *plug.error_prefixes]
            owned += [(prefix, plug.name) for prefix in
                      prefixes or [router.prefix for router in plug.routers if router.prefix]]
        self.dialects = sorted(owned, key=lambda pair: len(pair[0]), reverse=True)
        self._paths: dict[Any, str] | None = None
        # The metrics' children by label values: one dict lookup per request instead of a
        # `labels()` call per metric (they cost a third of the middleware).
        self._children: dict[tuple[str, str, str, int, str], tuple[Any, Any, Any, Any]] = {}
        self._in_progress: dict[str, Any] = {}

    def dialect_of(self, path: str) -> str:
        for prefix, name in self.dialects:
            if path == prefix or path.startswith(prefix + "/"):
                return name
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        dialect = self.dialect_of(scope["path"])
        started = time.perf_counter()
        answered: list[Any] = []

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not answered:
                answered.extend((message["status"], time.perf_counter() - started))
            await send(message)

        in_progress = self._in_progress.get(dialect)
        if in_progress is None:
            in_progress = self._in_progress[dialect] = metrics.HTTP_IN_PROGRESS.labels(dialect)
        in_progress.inc()
        token = logs.push(dialect=dialect)
        try:
            await self.app(scope, receive, timed_send)
        finally:
            logs.pop(token)
            in_progress.dec()
            status, seconds = answered if answered else (500, time.perf_counter() - started)
            self._record(scope, dialect, status, seconds)

    def route_template(self, scope: Scope) -> str:
        """The matched route's path template. FastAPI's routes leave themselves in the scope;
        plain Starlette routes (the hot paths answered ahead of FastAPI) only their endpoint."""
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path", UNMATCHED))
        if "endpoint" not in scope:
            return self._template_of_unrouted(scope, self.routes)
        if self._paths is None:
            self._paths = {}
            for candidate in getattr(scope["app"], "routes", []):
                endpoint = getattr(candidate, "endpoint", None) or getattr(candidate, "app", None)
                if endpoint is not None and hasattr(candidate, "path"):
                    self._paths.setdefault(endpoint, candidate.path)
        return self._paths.get(scope["endpoint"], UNMATCHED)

    @staticmethod
    def _template_of_unrouted(scope: Scope, routes: list[Any]) -> str:
        """The template of the route a request was meant for, when it was answered before routing
        (a POST refused by KeyBeforeBody before its body is read)."""
        for candidate in routes:
            matched, _ = candidate.matches(scope)
            if matched == Match.FULL and hasattr(candidate, "path"):
                return str(candidate.path)
        return UNMATCHED

    def _record(self, scope: Scope, dialect: str, status: int, seconds: float) -> None:
        route = self.route_template(scope)
        dialect = self.by_route.get(route, dialect)
        method = scope["method"] if scope["method"] in METHODS else "other"
        key = (scope.get("state") or {}).get(KEY_PREFIX_STATE) or NO_KEY
        labels = (dialect, route, method, status, key)
        children = self._children.get(labels)
        if children is None:
            children = self._children[labels] = (
                metrics.HTTP_REQUESTS.labels(dialect, route, method, str(status)),
                metrics.HTTP_SECONDS.labels(dialect, route, method),
                metrics.KEY_REQUESTS.labels(key, dialect, f"{status // 100}xx"),
                metrics.KEY_SECONDS.labels(key, dialect))
        requests, latency, key_requests, key_latency = children
        requests.inc()
        latency.observe(seconds)
        key_requests.inc()
        key_latency.observe(seconds)
