"""Builds the ASGI app from settings: the dialect routers, error shapes, and background threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from starlette.routing import BaseRoute

from roomrender import __version__
from roomrender.api import downloads, ops
from roomrender.api.errors import DialectErrors, honest_openapi, install_error_handlers
from roomrender.api.guards import BodyLimit, KeyBeforeBody, RequestRates, StreamSlots
from roomrender.api.ops import metrics_registry
from roomrender.api.shutdown import Draining
from roomrender.api.telemetry import RequestTelemetry
from roomrender.config import Settings
from roomrender.dialects import PLUGS
from roomrender.services import Services, build_services
from roomrender.warmup import Warmup
from roomrender.web import playground
from roomrender.webhooks.delivery import Dispatcher

log = logging.getLogger("roomrender")


class Background:
    """In-process workers, the janitor and the webhook dispatcher, started and stopped with the app."""

    def __init__(self, services: Services, workers: int, janitor: bool,
                 webhooks: bool = True) -> None:
        self.services = services
        self.workers = workers
        self.janitor = janitor
        self.webhooks = webhooks
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        # Only a process that runs jobs warms the engine up; /readyz reads where it stands.
        self.warmup = Warmup.of(services.engine) if workers else Warmup.not_needed()

    def start(self) -> None:
        """Start at once what needs no warm engine; the workers start in the background once the
        engine's warm-up ends, so that the app answers /healthz (and /readyz: 503) meanwhile."""
        if self.workers:
            self._start(threading.Thread(target=self._warm_then_work, name="warm-up", daemon=True))
        if self.janitor:
            self._start(threading.Thread(target=self.services.new_janitor().run,
                                         args=(self.stop,), name="janitor", daemon=True))
        if self.webhooks:
            # The API process delivers webhooks; several processes may, the outbox has leases.
            dispatcher = self.services.new_dispatcher()
            self._start(threading.Thread(target=self._dispatch, args=(dispatcher,),
                                         name="webhooks", daemon=True))

    def _start(self, thread: threading.Thread) -> None:
        with self._threads_lock:
            if self.stop.is_set():
                return
            self.threads.append(thread)
            thread.start()

    def _warm_then_work(self) -> None:
        try:
            self.warmup.run(self.services.engine.warm_up)
        except Exception:
            log.exception("the engine's warm-up failed: this process runs no jobs")
            return
        for index in range(self.workers):
            worker = self.services.new_worker()
            self._start(threading.Thread(target=worker.run, args=(self.stop,),
                                         name=f"worker-{index}", daemon=True))

    def _dispatch(self, dispatcher: Dispatcher) -> None:
        try:
            dispatcher.run(self.stop)
        finally:
            dispatcher.close()

    def close(self, timeout: float | None = None) -> None:
        # In-process workers get their stop grace, then a moment to hand back and store.
        timeout = self.services.settings.worker_stop_grace_seconds + 10 if timeout is None else timeout
        with self._threads_lock:
            self.stop.set()
            threads = list(self.threads)
        # A warm-up cannot be cut short (a load, a compile): it is waited for up to `timeout`,
        # then left to die with the process (daemon); no worker starts after it.
        for thread in threads:
            thread.join(timeout)


def create_app(settings: Settings | None = None, *, services: Services | None = None,
               workers: int = 0, janitor: bool = True, webhooks: bool = True) -> FastAPI:
    settings = settings or Settings()
    services = services or build_services(settings)
    background = Background(services, workers, janitor, webhooks)
    draining = Draining()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        draining.clear()
        restore_signals = draining.watch_signals()
        background.start()
        # Open event streams of a key close the moment it is revoked, in any process.
        slots: StreamSlots = _app.state.stream_slots
        stop_following = services.keys.on_revoked(slots.revoked, slots.followed)
        try:
            yield
        finally:
            stop_following()
            draining.set()
            background.close()
            restore_signals()

    # /docs loads Swagger UI from files in fastapi-offline, not from a CDN. No /redoc: ReDoc
    # fetches its logo from its own CDN whatever it is given.
    app = FastAPIOffline(
        redoc_url=None,
        title="roomrender",
        version=__version__,
        description=(
            "Self-hosted AI interior-design rendering. Native API under /v1; Spacely-compatible "
            "under /api/v1; Luw-compatible under /v2; Replicate-compatible predictions under "
            "/v1/predictions, /v1/models and /v1/files."
        ),
        lifespan=lifespan,
        # Swagger UI would otherwise ask validator.swagger.io about our schema.
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.services = services
    app.state.metrics = metrics_registry(services.queue, services.outbox)
    app.state.draining = draining
    draining.on_set(services.watchers.drain)  # open event streams end at once
    app.state.background = background
    app.state.warmup = background.warmup
    dialects = DialectErrors()
    app.state.dialect_errors = dialects
    app.include_router(ops.router)
    leading: list[BaseRoute] = []
    for plug in PLUGS:
        if plug.render_error is not None:
            for prefix in ([plug.prefix] if plug.prefix is not None else []) + list(plug.error_prefixes):
                dialects.register(prefix, plug.render_error)
        for router in plug.routers:
            app.include_router(router)
        for callbacks in plug.callbacks:
            app.webhooks.include_router(callbacks)
        leading.extend(plug.leading_routes)
    install_error_handlers(app, dialects)
    honest_openapi(app)
    app.include_router(downloads.router)
    app.include_router(playground.router)
    app.router.routes[0:0] = leading
    # Inside telemetry (its 401s are counted), before routing: no unauthenticated body is read.
    app.add_middleware(KeyBeforeBody)
    app.add_middleware(RequestTelemetry, plugs=PLUGS)
    app.state.request_rates = RequestRates(settings.rate_limit, settings.rate_limit_storage)
    app.state.stream_slots = StreamSlots(settings.max_event_streams_per_key)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["*"], allow_headers=["*"], max_age=600)
    # Outermost: a body is cut off before anything reads it, authentication included.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
