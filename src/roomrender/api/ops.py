"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select, text

from roomrender.db.database import check_schema
from roomrender.db.tables import jobs

router = APIRouter(tags=["operations"])


class JobsCollector(Collector):
    """Job counts by status and task, read from the database so every process agrees."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("roomrender_jobs", "Jobs by status and task",
                                  labels=["status", "task"])
        with self.db.connect() as connection:
            rows = connection.execute(
                select(jobs.c.status, jobs.c.task, func.count()).group_by(jobs.c.status, jobs.c.task)
            ).all()
        for status, task, count in rows:
            gauge.add_metric([status, task], count)
        yield gauge


def metrics_registry(db: Engine) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(JobsCollector(db))
    return registry


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers and its schema is current")
def readyz(request: Request) -> JSONResponse:
    db = request.app.state.services.db
    try:
        with db.connect() as connection:
            connection.execute(text("SELECT 1"))
        check_schema(db)
    except Exception as problem:  # noqa: BLE001 - readiness reports any failure
        return JSONResponse({"status": "unavailable", "reason": str(problem)}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
