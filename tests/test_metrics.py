"""/metrics after a few jobs: names, labels and values of the job, batch, worker, webhook,
request and GPU metrics; and the Grafana dashboard asks only for metrics that exist.

Counters and histograms are the process's own and accumulate over the test session, so tests
compare values before and after what they do."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete

from roomrender.app import create_app
from roomrender.db.tables import webhook_attempts, webhook_messages
from roomrender.metrics import GpuMemoryCollector
from roomrender.services import Services, build_services
from tests.conftest import BASE_URL, data_uri, drain
from tests.fakes import FAIL_PROMPT, AllTasksEngine
from tests.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parents[1]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> tuple[Samples, set[str], str]:
    """(every sample by name and labels, the metric family names, the raw text) of /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    families = set()
    for family in text_string_to_metric_families(response.text):
        families.add(family.name)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, families, response.text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def services(settings) -> Iterator[Services]:
    built = build_services(settings.model_copy(update={"allow_private_urls": True,
                                                       "webhook_retry_schedule": [0, 30]}),
                           engine=AllTasksEngine())
    with built.db.begin() as connection:  # a shared database (PostgreSQL) starts with no messages
        connection.execute(delete(webhook_attempts))
        connection.execute(delete(webhook_messages))
    yield built
    built.db.dispose()


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services.settings, services=services, workers=0, janitor=False,
                      webhooks=False)


def submit(client: TestClient, auth: dict[str, str], image: bytes, **fields: object) -> str:
    body = {"task": "restyle", "image": data_uri(image), "style": "modern"} | fields
    created = client.post("/v1/jobs", headers=auth, json=body)
    assert created.status_code == 202, created.text
    return str(created.json()["id"])


def test_jobs_batches_and_outcomes_after_a_few_jobs(client, auth, services, room_jpeg):
    before, _, _ = scrape(client)
    for _ in range(3):
        submit(client, auth, room_jpeg)
    submit(client, auth, room_jpeg, prompt=FAIL_PROMPT)
    canceled = submit(client, auth, room_jpeg)
    assert client.post(f"/v1/jobs/{canceled}/cancel", headers=auth).status_code == 200
    started = time.time()
    worker = services.new_worker()
    while worker.run_once():
        pass
    after, _, _ = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    job = {"task": "restyle", "engine": "all-tasks"}
    assert delta("roomrender_jobs_submitted_total", **job, dialect="native") == 5
    assert delta("roomrender_jobs_ended_total", **job, dialect="native", outcome="succeeded") == 3
    assert delta("roomrender_jobs_ended_total", **job, dialect="native", outcome="failed") == 1
    assert delta("roomrender_jobs_ended_total", **job, dialect="native", outcome="canceled") == 1
    assert delta("roomrender_job_failures_total", **job, code="generation_failed") == 1
    # Wait, run and latency are observed for the 4 jobs that ran, not the one canceled in the queue.
    for histogram in ("roomrender_job_queue_wait_seconds", "roomrender_job_run_seconds",
                      "roomrender_job_latency_seconds"):
        assert delta(f"{histogram}_count", **job) == 4
        assert delta(f"{histogram}_bucket", **job, le="+Inf") == 4
        assert 0 < delta(f"{histogram}_sum", **job) < 4 * 60
    assert delta("roomrender_job_latency_seconds_sum", **job) >= delta(
        "roomrender_job_run_seconds_sum", **job)
    # The 4 jobs share a batch key: one batch of 4 jobs and 4 images.
    assert delta("roomrender_batch_jobs_count", engine="all-tasks") == 1
    assert delta("roomrender_batch_jobs_sum", engine="all-tasks") == 4
    assert delta("roomrender_batch_images_sum", engine="all-tasks") == 4
    assert delta("roomrender_batch_jobs_bucket", engine="all-tasks", le="4.0") == 1
    assert delta("roomrender_batch_jobs_bucket", engine="all-tasks", le="3.0") == 0
    assert delta("roomrender_batch_seconds_count", engine="all-tasks") == 1
    # Jobs by state: read from the database.
    assert value(after, "roomrender_jobs", status="succeeded", task="restyle") == 3
    assert value(after, "roomrender_jobs", status="failed", task="restyle") == 1
    assert value(after, "roomrender_jobs", status="canceled", task="restyle") == 1
    # An empty state is listed at 0, so an idle queue shows 0 rather than nothing.
    assert after[("roomrender_jobs", frozenset({("status", "queued"), ("task", "restyle")}))] == 0
    # run() records each time a worker goes round its loop, idle too (the queue is empty now).
    idle = services.new_worker()
    stop = threading.Event()
    loop = threading.Thread(target=idle.run, args=(stop,))
    loop.start()
    deadline = time.monotonic() + 10
    while True:  # until it has gone round once, however busy the machine
        seen, _, _ = scrape(client)
        last_seen = seen.get(("roomrender_worker_last_seen_timestamp_seconds",
                              frozenset({("worker", idle.worker_id)})))
        if last_seen is not None or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    stop.set()
    loop.join(5)
    assert last_seen is not None and last_seen >= started
    # Its heartbeat counter is listed at 0 before its first heartbeat.
    assert seen[("roomrender_worker_heartbeats_total", frozenset({("worker", idle.worker_id)}))] == 0


def test_heartbeats_are_counted_per_worker(client, auth, services, room_jpeg):
    services.engine.seconds_per_image = 0.6  # longer than 2 heartbeats (0.2 s in tests)
    submit(client, auth, room_jpeg)
    worker = services.new_worker()
    assert worker.run_once()
    samples, _, _ = scrape(client)
    assert value(samples, "roomrender_worker_heartbeats_total", worker=worker.worker_id) >= 2
    assert value(samples, "roomrender_worker_last_seen_timestamp_seconds",
                 worker=worker.worker_id) > time.time() - 5


def test_requests_are_counted_by_dialect_route_template_and_key_prefix(client, auth, api_key,
                                                                        room_jpeg):
    before, _, _ = scrape(client)
    job_id = submit(client, auth, room_jpeg)
    for _ in range(2):
        assert client.get(f"/v1/jobs/{job_id}", headers=auth).status_code == 200
    assert client.get("/v1/jobs/no-such-job", headers=auth).status_code == 404
    assert client.get("/api/v1/generate/poll-result", params={"refId": "x"}).status_code == 401
    assert client.post("/v2/generate", data={"processing_url": "x"}).status_code == 401
    assert client.get(f"/not/a/route/{job_id}").status_code == 404
    assert client.get("/v1/predictions/abc").status_code == 401  # Replicate's, under /v1 too
    assert client.get("/v1/deployments/abc", headers=auth).status_code == 404
    after, _, text = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    prefix = api_key[:10]
    assert delta("roomrender_http_requests_total", dialect="native", route="/v1/jobs",
                 method="POST", status="202") == 1
    assert delta("roomrender_http_requests_total", dialect="native", route="/v1/jobs/{job_id}",
                 method="GET", status="200") == 2
    assert delta("roomrender_http_requests_total", dialect="native", route="/v1/jobs/{job_id}",
                 method="GET", status="404") == 1
    assert delta("roomrender_http_requests_total", dialect="spacely",
                 route="/api/v1/generate/poll-result", method="GET", status="401") == 1
    assert delta("roomrender_http_requests_total", dialect="luw", route="/v2/generate",
                 method="POST", status="401") == 1
    assert delta("roomrender_http_requests_total", dialect="other", route="unmatched",
                 method="GET", status="404") == 1
    assert delta("roomrender_http_requests_total", dialect="replicate",
                 route="/v1/predictions/{prediction_id}", method="GET", status="401") == 1
    assert delta("roomrender_http_requests_total", dialect="replicate", route="unmatched",
                 method="GET", status="404") == 1
    assert delta("roomrender_http_request_seconds_count", dialect="native",
                 route="/v1/jobs/{job_id}", method="GET") == 3
    assert delta("roomrender_key_requests_total", key=prefix, dialect="native",
                 status_class="2xx") == 3
    assert delta("roomrender_key_requests_total", key=prefix, dialect="native",
                 status_class="4xx") == 1
    assert delta("roomrender_key_requests_total", key="none", dialect="spacely",
                 status_class="4xx") == 1
    assert delta("roomrender_key_request_seconds_count", key=prefix, dialect="native") == 4
    assert value(after, "roomrender_http_requests_in_progress", dialect="native") == 0
    # Bounded labels: neither the key nor a job id nor a raw path appears.
    assert api_key not in text and job_id not in text and "/not/a/route" not in text


@pytest.mark.slow
def test_webhook_deliveries_by_outcome_and_the_backlog(client, auth, services, room_jpeg, monkeypatch):
    before, _, _ = scrape(client)
    dispatcher = services.new_dispatcher()
    try:
        with Receiver(replies=[503]) as receiver:
            submit(client, auth, room_jpeg, webhook=receiver.url())
            drain(services)
            waiting, _, _ = scrape(client)
            assert value(waiting, "roomrender_webhook_backlog", state="due") == 1
            assert value(waiting, "roomrender_webhook_oldest_due_seconds") >= 0
            assert dispatcher.run_once() == 1  # 503: tried again later
            retrying, _, _ = scrape(client)
            assert value(retrying, "roomrender_webhook_backlog", state="retrying") == 1
            assert value(retrying, "roomrender_webhook_backlog", state="due") == 0
            real_time = time.time
            monkeypatch.setattr(time, "time", lambda: real_time() + 31)  # the retry is due
            assert dispatcher.run_once() == 1  # 200
            monkeypatch.setattr(time, "time", real_time)
            assert len(receiver.calls) == 2
    finally:
        dispatcher.close()
    after, _, _ = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("roomrender_webhook_attempts_total", outcome="retry") == 1
    assert delta("roomrender_webhook_attempts_total", outcome="delivered") == 1
    assert delta("roomrender_webhook_deliveries_total", outcome="delivered") == 1
    assert delta("roomrender_webhook_attempt_seconds_count") == 2
    assert {state: value(after, "roomrender_webhook_backlog", state=state)
            for state in ("due", "in_flight", "retrying")} == {"due": 0, "in_flight": 0,
                                                                "retrying": 0}


class FakeCuda:
    """torch.cuda as the collector reads it, for one device."""

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def device_count(self) -> int:
        return 1

    def mem_get_info(self, index: int) -> tuple[int, int]:
        return 60 * 2**30, 80 * 2**30

    def memory_allocated(self, index: int) -> int:
        return 3 * 2**30

    def max_memory_allocated(self, index: int) -> int:
        return 7 * 2**30

    def memory_reserved(self, index: int) -> int:
        return 4 * 2**30


def test_gpu_memory_is_reported_when_this_process_uses_cuda(client, monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    samples, families, _ = scrape(client)
    assert "roomrender_gpu_memory_peak_bytes" in families  # listed, with no device
    assert not [key for key in samples if key[0].startswith("roomrender_gpu_")]

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=FakeCuda()))
    samples, _, _ = scrape(client)
    assert value(samples, "roomrender_gpu_memory_allocated_bytes", device="0") == 3 * 2**30
    assert value(samples, "roomrender_gpu_memory_peak_bytes", device="0") == 7 * 2**30
    assert value(samples, "roomrender_gpu_memory_reserved_bytes", device="0") == 4 * 2**30
    assert value(samples, "roomrender_gpu_memory_used_bytes", device="0") == 20 * 2**30
    assert value(samples, "roomrender_gpu_memory_total_bytes", device="0") == 80 * 2**30

    cold = FakeCuda()
    cold.is_initialized = lambda: False  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cold))
    assert all(not family.samples for family in GpuMemoryCollector().collect())


def test_metrics_never_import_torch(tmp_path):
    probe = ("import sys, roomrender.metrics, roomrender.app\n"
             "from prometheus_client import REGISTRY, generate_latest\n"
             "generate_latest(REGISTRY)\n"
             "print('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, env={"PYTHONPATH": str(ROOT / "src"),
                                                       "PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == "False", result.stderr


def dashboard_metrics() -> set[str]:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert exprs
    return set(re.findall(r"\broomrender_[a-z0-9_]+", " ".join(exprs)))


def test_the_grafana_dashboard_uses_only_metrics_that_exist(client):
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["schemaVersion"] >= 30
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    _, families, text = scrape(client)
    exposed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    used = dashboard_metrics()
    missing = set()
    for name in used:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in exposed and base not in exposed:
            missing.add(name)
    assert not missing, f"the dashboard asks for metrics /metrics does not have: {missing}"
    # And it shows every family roomrender defines.
    ours = {name for name in exposed if name.startswith("roomrender_")}
    shown = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    assert ours - shown == set(), f"not on the dashboard: {ours - shown}"


def test_an_app_built_twice_in_one_process_still_scrapes(services):
    # The process's metrics are registered once; every app shows them.
    with TestClient(create_app(services.settings, services=services, workers=0, janitor=False,
                               webhooks=False), base_url=BASE_URL) as first:
        assert "roomrender_batch_jobs" in first.get("/metrics").text
