"""The autoscaler's queries (deploy/kubernetes's KEDA ScaledObject, as shipped) and the
`roomrender_queue_depth` metric count exactly the queued and the running jobs, on the test
database (PostgreSQL with ROOMRENDER_TEST_DATABASE_URL); on PostgreSQL each is one index scan."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from roomrender.canonical.models import GenerationRequest, JobStatus, Task
from roomrender.db.tables import jobs
from roomrender.services import Services
from tests.databases import is_postgresql
from tests.fakes_scale import bulk_enqueue
from tests.kustomize_render import by_kind_and_name, render

KUBERNETES = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"


def scaler_queries() -> dict[str, str]:
    scaled = by_kind_and_name(render(KUBERNETES / "overlays" / "gpu"))[
        ("ScaledObject", "roomrender-worker")]
    return {trigger["name"]: trigger["metadata"]["query"] for trigger in scaled["spec"]["triggers"]}


def jobs_in_every_status(services: Services, per_status: dict[JobStatus, int]) -> None:
    owner = services.keys.authenticate(services.keys.create("acme")[1])
    assert owner is not None
    request = GenerationRequest(task=Task.text_to_image, prompt="a calm room")
    for status, count in per_status.items():
        ids = bulk_enqueue(services, owner.id, request, count)
        with services.db.begin() as connection:
            connection.execute(update(jobs).where(jobs.c.id.in_(ids)).values(
                status=status.value, finished_at=time.time() if status.is_terminal else None))


COUNTS = {JobStatus.queued: 7, JobStatus.running: 3, JobStatus.succeeded: 11,
          JobStatus.failed: 2, JobStatus.canceled: 4}


def test_the_scalers_queries_count_exactly_the_queued_and_running_jobs(services: Services) -> None:
    queries = scaler_queries()
    with services.db.connect() as connection:
        assert connection.execute(text(queries["queued-jobs"])).scalar_one() == 0
    jobs_in_every_status(services, COUNTS)
    with services.db.connect() as connection:
        assert connection.execute(text(queries["queued-jobs"])).scalar_one() == 7
        assert connection.execute(text(queries["running-jobs"])).scalar_one() == 3
    assert services.queue.depth() == {"queued": 7, "running": 3}


def test_the_queue_depth_metric(client: TestClient, services: Services) -> None:
    jobs_in_every_status(services, COUNTS)
    body = client.get("/metrics").text
    assert 'roomrender_queue_depth{status="queued"} 7.0' in body
    assert 'roomrender_queue_depth{status="running"} 3.0' in body


def test_on_postgresql_each_count_is_one_index_scan(services: Services) -> None:
    if not is_postgresql(services.settings.database_url):
        pytest.skip("the plan is PostgreSQL's (ROOMRENDER_TEST_DATABASE_URL)")
    # A table that has served a while: many ended jobs, a few waiting.
    jobs_in_every_status(services, {JobStatus.succeeded: 20000, JobStatus.queued: 30,
                                    JobStatus.running: 4})
    with services.db.begin() as connection:
        connection.execute(text("ANALYZE jobs"))
        plans = [connection.execute(text(f"EXPLAIN {query}")).scalars().all()
                 for query in scaler_queries().values()]
    for plan in plans:
        scans = [line for line in plan if "Scan" in line]
        assert len(scans) == 1 and "Index" in scans[0] and "ix_jobs_" in scans[0], plan
