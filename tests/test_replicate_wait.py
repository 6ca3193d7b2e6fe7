"""Replicate's `Prefer: wait`: the answer is held until the prediction ends, waiting on the
change feed (the job's watch, as the event streams do) rather than reading the job again and
again; when the wait runs out, the prediction is answered as it is, `starting`, with a 202."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from roomrender.jobs.service import JobService
from tests.conftest import data_uri, drain

INTERIOR_VERSION = "76604baddc85b1b4616e1c6475eca080da339c8875bd4996705440484a6eac38"


@pytest.fixture
def reads(services, monkeypatch) -> list[str]:
    """The jobs read through JobService.get while the test runs (submit reads its new job once)."""
    seen: list[str] = []
    original = JobService.get

    def counted(self: JobService, owner: Any, job_id: str) -> Any:
        seen.append(job_id)
        return original(self, owner, job_id)

    monkeypatch.setattr(JobService, "get", counted)
    return seen


def work_once(services, limit: float = 20.0) -> None:
    """A worker that runs the next job to be queued (it polls the queue until one is there)."""
    worker = services.new_worker()
    deadline = time.monotonic() + limit
    while not worker.run_once() and time.monotonic() < deadline:
        time.sleep(0.05)


def predict(client, auth, room_jpeg: bytes, wait: str) -> Any:
    return client.post("/v1/predictions", headers={**auth, "Prefer": wait}, json={
        "version": INTERIOR_VERSION, "input": {"image": data_uri(room_jpeg), "prompt": "a loft"}})


def test_the_answer_comes_when_the_prediction_ends(client, auth, services, room_jpeg, reads):
    worker = threading.Thread(target=work_once, args=(services,))
    worker.start()
    started = time.monotonic()
    answer = predict(client, auth, room_jpeg, "wait=30")
    elapsed = time.monotonic() - started
    worker.join()
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "succeeded" and isinstance(body["output"], str)
    assert answer.headers["preference-applied"] == "wait=30"
    assert elapsed < 15
    # Submit read its job once; the wait itself read nothing: the change feed brought the rest.
    assert reads == [body["id"]]


def test_a_wait_that_runs_out_answers_starting_with_a_202(client, auth, services, room_jpeg, reads):
    started = time.monotonic()
    answer = predict(client, auth, room_jpeg, "wait=1")
    elapsed = time.monotonic() - started
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "starting" and answer.json()["output"] is None
    assert 0.9 < elapsed < 5
    assert reads == [answer.json()["id"]]
    drain(services)
    done = client.get(answer.headers["location"], headers=auth).json()
    assert done["status"] == "succeeded"
