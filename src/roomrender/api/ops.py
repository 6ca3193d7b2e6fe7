"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from roomrender.api.deps import services
from roomrender.api.errors import COMMON_STATUSES, native_responses
from roomrender.db.database import check_schema
from roomrender.jobs.queue import JobQueue

router = APIRouter(tags=["operations"], responses=native_responses(*COMMON_STATUSES))


class JobsCollector(Collector):
    """Job counts by status and task, read from the database so every process agrees."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("roomrender_jobs", "Jobs by status and task",
                                  labels=["status", "task"])
        for status, task, count in self.queue.counts():
            gauge.add_metric([status, task], count)
        yield gauge


def metrics_registry(queue: JobQueue) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(JobsCollector(queue))
    return registry


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers, its schema is current, and files can be "
            "stored")
def readyz(request: Request) -> JSONResponse:
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
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
