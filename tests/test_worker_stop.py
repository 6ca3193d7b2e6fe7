"""Handing a claim back (JobQueue.release) and a worker told to stop, in one process.
The same with real processes and SIGTERM: tests/test_graceful_stop.py."""

from __future__ import annotations

import threading
import time

from roomrender.canonical.models import GenerationRequest, JobStatus
from roomrender.services import build_services
from tests.conftest import data_uri, make_room_photo
from tests.slow_engine import SlowPreviewEngine


def restyle() -> GenerationRequest:
    return GenerationRequest(task="restyle", image=data_uri(make_room_photo(120, 90)), style="modern")


def test_release_queues_a_claim_again_without_counting_the_attempt(settings):
    services = build_services(settings)
    owner = services.keys.authenticate(services.keys.create("t", credits=10)[1])
    first, second, canceled = (services.jobs.submit(owner, restyle()) for _ in range(3))
    claim = services.queue.claim("w1", "preview", max_images=8)
    assert claim is not None and len(claim.rows) == 3
    services.jobs.cancel(owner, canceled.id)  # running: canceled at the next step

    assert sorted(services.queue.release(claim.token)) == sorted([first.id, second.id])
    for job_id in (first.id, second.id):
        job = services.jobs.get(owner, job_id)
        assert (job.status, job.attempts, job.started_at, job.progress) == (
            JobStatus.queued, 0, None, 0)
    assert services.jobs.get(owner, canceled.id).status == JobStatus.canceled
    # Still charged for the two queued jobs; the canceled one was refunded.
    assert services.jobs.credits(owner) == {"available": 8, "used": 2, "granted": 10,
                                                  "reserved": 2}
    # The released claim is stale: what its worker still reports matches nothing.
    assert not services.queue.succeed(first.id, claim.token, [], None)
    again = services.queue.claim("w2", "preview", max_images=8)
    assert again is not None and [row.id for row in again.rows] == [first.id, second.id]
    assert [row.attempts for row in again.rows] == [1, 1]


def test_a_second_attempt_handed_back_keeps_its_first_start(settings):
    services = build_services(settings)
    owner = services.keys.authenticate(services.keys.create("t")[1])
    job = services.jobs.submit(owner, restyle())
    lost = services.queue.claim("w1", "preview")
    assert lost is not None
    services.queue.requeue_expired(now=time.time() + settings.lease_seconds + 1)
    first_start = lost.rows[0].started_at
    retry = services.queue.claim("w2", "preview")
    assert retry is not None and retry.rows[0].attempts == 2
    services.queue.release(retry.token)
    handed_back = services.jobs.get(owner, job.id)
    assert handed_back.status == JobStatus.queued and handed_back.attempts == 1
    assert handed_back.started_at is not None
    assert abs(handed_back.started_at.timestamp() - first_start) < 1e-3


def run_worker(services, grace: float) -> tuple[threading.Event, threading.Thread]:
    services.settings = services.settings.model_copy(update={"worker_stop_grace_seconds": grace})
    worker = services.new_worker()
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    return stop, thread


def wait_until_running(services, owner, job_id: str) -> None:
    deadline = time.monotonic() + 10
    while services.jobs.get(owner, job_id).progress == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_stopping_worker_hands_back_a_batch_that_outlasts_its_grace(settings):
    services = build_services(settings, engine=SlowPreviewEngine(steps=200, step_seconds=0.05))
    owner = services.keys.authenticate(services.keys.create("t")[1])
    job = services.jobs.submit(owner, restyle())
    stop, thread = run_worker(services, grace=0.3)
    wait_until_running(services, owner, job.id)
    stopped = time.monotonic()
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - stopped < 2  # the grace, then one engine step
    handed_back = services.jobs.get(owner, job.id)
    assert handed_back.status == JobStatus.queued and handed_back.attempts == 0
    assert handed_back.outputs == []


def test_a_stopping_worker_finishes_a_batch_within_its_grace(settings):
    services = build_services(settings, engine=SlowPreviewEngine(steps=10, step_seconds=0.05))
    owner = services.keys.authenticate(services.keys.create("t")[1])
    job = services.jobs.submit(owner, restyle())
    stop, thread = run_worker(services, grace=30)
    wait_until_running(services, owner, job.id)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    done = services.jobs.get(owner, job.id)
    assert done.status == JobStatus.succeeded and done.attempts == 1 and len(done.outputs) == 1
