"""Health, readiness and Prometheus metrics.

`/metrics` shows this process's own metrics (`roomrender.metrics`: its requests, and the jobs,
batches and webhooks it handled) and two families read from the database at scrape time, the
same from every API process: jobs by status and task, and the webhook backlog."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from roomrender.api.deps import services
from roomrender.api.errors import COMMON_STATUSES, native_responses
from roomrender.canonical.models import JobStatus
from roomrender.db.database import check_schema
from roomrender.jobs.queue import JobQueue
from roomrender.warmup import Warmup, WarmupReport
from roomrender.webhooks.outbox import Outbox

router = APIRouter(tags=["operations"], responses=native_responses(*COMMON_STATUSES))


class JobsCollector(Collector):
    """Job counts by status and task, read from the database so every process agrees. Every
    status of a task that has jobs is listed, at 0 when none is in it (an idle queue shows 0,
    not nothing)."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("roomrender_jobs", "Jobs by status and task",
                                  labels=["status", "task"])
        counts = {(status, task): count for status, task, count in self.queue.counts()}
        for task in sorted({task for _status, task in counts}):
            for status in JobStatus:
                gauge.add_metric([status.value, task], counts.get((status.value, task), 0))
        yield gauge
        depth = GaugeMetricFamily(
            "roomrender_queue_depth",
            "Jobs queued and running (one index scan; what the workers' autoscaler reads)",
            labels=["status"])
        for state, count in self.queue.depth().items():
            depth.add_metric([state], count)
        yield depth


class WebhookBacklogCollector(Collector):
    """Webhook messages waiting, read through the Outbox (the owner of the webhook tables)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def collect(self) -> Iterator[GaugeMetricFamily]:
        backlog = self.outbox.backlog()
        messages = GaugeMetricFamily(
            "roomrender_webhook_backlog",
            "Webhook messages not yet delivered nor given up on: due now, being sent "
            "(in_flight), or waiting for a retry", labels=["state"])
        messages.add_metric(["due"], backlog.due)
        messages.add_metric(["in_flight"], backlog.in_flight)
        messages.add_metric(["retrying"], backlog.retrying)
        yield messages
        yield GaugeMetricFamily("roomrender_webhook_oldest_due_seconds",
                                "How late the most overdue webhook message is",
                                value=backlog.oldest_due_seconds)


class ProcessCollector(Collector):
    """This process's metrics (prometheus_client's default registry: `roomrender.metrics`, and
    the process and Python collectors)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def metrics_registry(queue: JobQueue, outbox: Outbox | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ProcessCollector())
    registry.register(JobsCollector(queue))
    if outbox is not None:
        registry.register(WebhookBacklogCollector(outbox))
    return registry


@router.get("/healthz", summary="The process is up (answers while the engine warms up; 503 only "
            "when its warm-up failed)")
async def healthz(request: Request) -> JSONResponse:
    warmup = _warmup(request)
    if warmup is not None and not warmup.alive:
        return JSONResponse({"status": "unhealthy", "reason": warmup.describe(),
                             "code": "warm_up_failed", "warm_up": warmup.as_json()},
                            status_code=503)
    return JSONResponse({"status": "ok"})


def _warmup(request: Request) -> WarmupReport | None:
    warmup: Warmup | None = getattr(request.app.state, "warmup", None)
    return None if warmup is None else warmup.report()


@router.get("/readyz", summary="The engine is warm, the database answers, its schema is current, "
            "and files can be stored (`jobs_waiting_for`: queued jobs wait for a worker that is not running)")
def readyz(request: Request) -> JSONResponse:
    draining = getattr(request.app.state, "draining", None)
    if draining is not None and draining.is_set():
        return JSONResponse({"status": "unavailable", "reason": "shutting down"}, status_code=503)
    warmup = _warmup(request)
    if warmup is not None and not warmup.ready:
        return JSONResponse({"status": "warming" if warmup.alive else "unavailable",
                             "reason": warmup.describe(),
                             "code": "warming_up" if warmup.alive else "warm_up_failed",
                             "warm_up": warmup.as_json()}, status_code=503)
    svc = services(request)
    try:
        with svc.db.connect() as connection:
            connection.execute(text("SELECT 1"))
        check_schema(svc.db)
    except Exception as problem:
        return JSONResponse({"status": "unavailable", "reason": str(problem),
                             "code": "database_unavailable"}, status_code=503)
    try:
        svc.files.probe()
    except Exception as problem:
        return JSONResponse({"status": "unavailable", "reason": str(problem),
                             "code": "storage_unavailable"}, status_code=503)
    # Ready to take jobs; whether any worker runs them is said apart (a worker is another process).
    body = {"status": "ready"}
    waiting_for = svc.jobs.worker_presence.shortage()
    if waiting_for is not None:
        body["jobs_waiting_for"] = waiting_for
    return JSONResponse(body)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
