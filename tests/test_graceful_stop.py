"""Stopping with SIGTERM: a `roomrender worker` finishes its batch within its grace or hands its
jobs back to the queue at once (not after the lease); a `roomrender serve` lets in-flight requests
complete and ends its event streams cleanly. Real subprocesses, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roomrender.canonical.models import GenerationRequest, JobStatus
from roomrender.config import Settings
from roomrender.services import Services, build_services
from tests.conftest import data_uri, make_room_photo
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
LEASE_SECONDS = 60
REPLICATE_INTERIOR_VERSION = "76604baddc85b1b4616e1c6475eca080da339c8875bd4996705440484a6eac38"
pytestmark = pytest.mark.slow


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "ROOMRENDER_DATA_DIR": str(settings.data_dir),
        "ROOMRENDER_DATABASE_URL": settings.resolved_database_url(),
        "ROOMRENDER_ENGINE": "tests.slow_engine:slow_engine",
        "ROOMRENDER_LEASE_SECONDS": str(LEASE_SECONDS),
        "ROOMRENDER_HEARTBEAT_SECONDS": "0.5",
        "ROOMRENDER_WORKER_POLL_SECONDS": "0.05",
        "ROOMRENDER_LOG_FORMAT": "json",
        **extra,
    }


class Started:
    """`python -m roomrender.cli ...` with its output in a file; killed if a test leaves it."""

    def __init__(self, logs: Path, env: dict[str, str], *args: str) -> None:
        self.log_path = logs
        self.log = open(logs, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "roomrender.cli", *args], cwd=ROOT,
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def terminate_and_wait(self, timeout: float) -> float:
        """SIGTERM; the seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)
        return time.monotonic() - started

    def lines(self) -> list[dict[str, Any]]:
        """Its log lines, each one JSON object."""
        self.log.flush()
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Any]:
    running: list[Started] = []

    def start(name: str, env: dict[str, str], *args: str) -> Started:
        process = Started(tmp_path / f"{name}.log", env, *args)
        running.append(process)
        return process

    yield start
    for process in running:
        process.stop()


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def submit(services: Services) -> tuple[Any, str]:
    key, plaintext = services.keys.create("acme")
    owner = services.keys.authenticate(plaintext)
    job = services.jobs.submit(owner, GenerationRequest(
        task="restyle", image=data_uri(make_room_photo()), style="modern"))
    return owner, job.id


def running_with_progress(services: Services, owner: Any, job_id: str) -> bool:
    job = services.jobs.get(owner, job_id)
    return job.status == JobStatus.running and job.progress > 0


def test_a_stopped_worker_hands_its_job_back_at_once(settings, started):
    services = build_services(settings)
    owner, job_id = submit(services)
    metrics_port = free_port()
    # A 30 s job, no grace: the worker must hand the job back rather than finish it.
    first = started("first", environment(settings, SLOW_ENGINE_STEPS="300",
                                         ROOMRENDER_WORKER_STOP_GRACE_SECONDS="0"),
                    "worker", "--metrics-port", str(metrics_port))
    wait_for(lambda: running_with_progress(services, owner, job_id), 30, "the job never started")
    # Its own metrics, on its own port: the lease heartbeats of the batch it runs.
    wait_for(lambda: "roomrender_worker_heartbeats_total{worker=" in httpx.get(
        f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text, 10, "no heartbeat counted")

    assert first.terminate_and_wait(10) < 5
    assert first.process.returncode == 0
    stopped_at = time.monotonic()
    handed_back = services.jobs.get(owner, job_id)
    assert handed_back.status == JobStatus.queued
    assert handed_back.attempts == 0 and handed_back.started_at is None and handed_back.progress == 0

    second = started("second", environment(settings, SLOW_ENGINE_STEPS="5"), "worker")
    wait_for(lambda: services.jobs.get(owner, job_id).status == JobStatus.succeeded, 30,
             "the second worker did not finish the job")
    # Done long before the first worker's lease (60 s) would have let anyone take the job.
    assert time.monotonic() - stopped_at < LEASE_SECONDS / 3
    finished = services.jobs.get(owner, job_id)
    assert finished.attempts == 1 and len(finished.outputs) == 1
    second.terminate_and_wait(10)

    lines = first.lines()
    [handback] = [line for line in lines if line["message"].startswith("handed 1 running job")]
    assert handback["job_id"] == [job_id] and handback["task"] == "restyle"
    assert handback["dialect"] == "native" and handback["key_prefix"].startswith("rr_")
    assert lines[-1]["message"] == "worker stopped"
    assert any(line.get("job_id") == job_id and line["message"].startswith(f"job {job_id} succeeded")
               for line in second.lines())


def test_a_stopped_worker_finishes_its_batch_within_the_grace(settings, started):
    services = build_services(settings)
    owner, job_id = submit(services)
    worker = started("worker", environment(settings, SLOW_ENGINE_STEPS="20",
                                           ROOMRENDER_WORKER_STOP_GRACE_SECONDS="30"), "worker")
    wait_for(lambda: running_with_progress(services, owner, job_id), 30, "the job never started")
    assert worker.terminate_and_wait(20) < 10
    assert worker.process.returncode == 0
    finished = services.jobs.get(owner, job_id)
    assert finished.status == JobStatus.succeeded and finished.attempts == 1
    assert not [line for line in worker.lines() if line["message"].startswith("handed")]


def slow_upload(boundary: str, image: bytes, seconds: float, sending: threading.Event) -> Iterator[bytes]:
    """A multipart body sent in pieces over `seconds`."""
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"room.jpg\"\r\n"
           "Content-Type: image/jpeg\r\n\r\n").encode()
    sending.set()
    pieces = 10
    size = len(image) // pieces + 1
    for index in range(pieces):
        time.sleep(seconds / pieces)
        yield image[index * size:(index + 1) * size]
    yield f"\r\n--{boundary}--\r\n".encode()


def test_a_stopped_api_process_drains_requests_and_ends_event_streams(settings, started):
    services = build_services(settings)
    _key, plaintext = services.keys.create("acme")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = started("serve", environment(
        settings, SLOW_ENGINE_STEPS="300", ROOMRENDER_WORKER_STOP_GRACE_SECONDS="0",
        ROOMRENDER_SHUTDOWN_TIMEOUT_SECONDS="20", ROOMRENDER_PUBLIC_BASE_URL=base),
        "serve", "--port", str(port), "--workers", "1", "--log-level", "warning")

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, 30, "the server did not start")
    auth = {"Authorization": f"Bearer {plaintext}"}
    created = httpx.post(f"{base}/v1/jobs", headers=auth, timeout=10, json={
        "task": "restyle", "image": data_uri(make_room_photo()), "style": "modern"})
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]

    # A Replicate prediction too, queued behind the job: its stream stays open as well.
    prediction = httpx.post(f"{base}/v1/predictions", headers=auth, timeout=10, json={
        "version": REPLICATE_INTERIOR_VERSION,
        "input": {"image": data_uri(make_room_photo()), "prompt": "a calm room"}})
    assert prediction.status_code == 201, prediction.text

    streamed: dict[str, Any] = {"text": ""}
    replicate_streamed: dict[str, Any] = {"text": ""}
    streaming = threading.Event()

    def follow(url: str, into: dict[str, Any]) -> None:
        try:
            with httpx.stream("GET", url, headers=auth, timeout=httpx.Timeout(30)) as stream:
                for text in stream.iter_text():
                    into["text"] += text
                    streaming.set()
        except Exception as failed:  # what a client would see: the test fails on it below
            into["error"] = repr(failed)

    uploaded: dict[str, Any] = {}
    sending = threading.Event()

    def upload() -> None:
        boundary = "roomrender-test-boundary"
        try:
            uploaded["response"] = httpx.post(
                f"{base}/v1/uploads", headers={**auth, "Content-Type":
                                               f"multipart/form-data; boundary={boundary}"},
                content=slow_upload(boundary, make_room_photo(), 2.0, sending), timeout=30)
        except Exception as failed:
            uploaded["error"] = repr(failed)

    threads = [threading.Thread(target=follow, args=(f"{base}/v1/jobs/{job_id}/events", streamed)),
               threading.Thread(target=follow, args=(prediction.json()["urls"]["stream"],
                                                     replicate_streamed)),
               threading.Thread(target=upload)]
    for thread in threads:
        thread.start()
    assert streaming.wait(15) and sending.wait(15)
    wait_for(lambda: '"status":"running"' in streamed["text"], 30, "the job never ran")

    assert "response" not in uploaded  # still sending its body

    took = server.terminate_and_wait(30)
    for thread in threads:
        thread.join(30)
    assert "error" not in uploaded, uploaded
    assert uploaded["response"].status_code == 201, uploaded["response"].text
    assert uploaded["response"].json()["id"]
    assert "error" not in streamed, streamed
    assert streamed["text"].rstrip().endswith("the server is shutting down; reconnect to follow the job")
    assert "event: end" not in streamed["text"]
    assert "error" not in replicate_streamed, replicate_streamed
    assert replicate_streamed["text"].rstrip().endswith(
        "the server is shutting down; reconnect to follow the prediction")
    assert "event: done" not in replicate_streamed["text"]
    assert took < 15
    assert server.process.returncode in (0, -signal.SIGTERM)
    # The in-process worker had no grace: the job waits in the queue for the next worker.
    assert services.jobs.get(services.keys.authenticate(plaintext), job_id).status == JobStatus.queued
