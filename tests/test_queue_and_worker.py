"""The queue (leases, attempts, batching) and the worker, including a worker killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from roomrender.canonical.models import GenerationRequest, JobStatus
from roomrender.db.tables import jobs
from roomrender.services import Services, build_services
from tests.conftest import data_uri, drain, make_room_photo
from tests.slow_engine import SlowPreviewEngine

ROOT = Path(__file__).resolve().parents[1]


def restyle(image: bytes, **fields) -> GenerationRequest:
    return GenerationRequest(task="restyle", image=data_uri(image), style="modern", **fields)


def test_compatible_jobs_run_as_one_batch(settings):
    engine = SlowPreviewEngine(steps=1, step_seconds=0)
    services = build_services(settings, engine=engine)
    owner = services.keys.authenticate(services.keys.create("t")[1])
    same_size = [services.jobs.submit(owner, restyle(make_room_photo(200, 150))) for _ in range(3)]
    other_size = services.jobs.submit(owner, restyle(make_room_photo(300, 150)))
    upscale = services.jobs.submit(owner, GenerationRequest(task="upscale", scale=2,
                                                            image=data_uri(make_room_photo(200, 150))))
    assert drain(services) == 3
    assert engine.batches[0] == [job.id for job in same_size]
    assert sorted(map(len, engine.batches)) == [1, 1, 3]
    assert {services.jobs.get(owner, j.id).status for j in [*same_size, other_size, upscale]} == {
        JobStatus.succeeded}


def test_a_batch_holds_at_most_the_configured_images(settings):
    settings = settings.model_copy(update={"batch_max_images": 4})
    engine = SlowPreviewEngine(steps=1, step_seconds=0)
    services = build_services(settings, engine=engine)
    owner = services.keys.authenticate(services.keys.create("t")[1])
    photo = make_room_photo(120, 90)
    submitted = {services.jobs.submit(owner, restyle(photo, n=n)).id: n for n in (3, 2, 1, 1)}
    drain(services)
    # A job never splits, the sum of n stays within 4, and a smaller job fills the gap.
    assert [[submitted[i] for i in batch] for batch in engine.batches] == [[3, 1], [2, 1]]


def test_higher_priority_runs_first(settings):
    engine = SlowPreviewEngine(steps=1, step_seconds=0)
    services = build_services(settings, engine=engine)
    owner = services.keys.authenticate(services.keys.create("t")[1])
    low = services.jobs.submit(owner, restyle(make_room_photo(100, 100)))
    high = services.jobs.submit(owner, restyle(make_room_photo(110, 100), priority=5))
    assert services.jobs.get(owner, high.id).queue_position == 1
    assert services.jobs.get(owner, low.id).queue_position == 2
    drain(services)
    assert engine.batches == [[high.id], [low.id]]


def test_an_expired_lease_puts_the_job_back_then_fails_it_after_the_last_attempt(settings):
    settings = settings.model_copy(update={"max_attempts": 2})
    services = build_services(settings)
    owner = services.keys.authenticate(services.keys.create("t", credits=1)[1])
    job = services.jobs.submit(owner, restyle(make_room_photo()))
    queue = services.queue
    now = time.time()

    assert queue.claim("dead-worker-1", "preview", now=now) is not None
    queue.requeue_expired(now + settings.lease_seconds + 1)
    assert services.jobs.get(owner, job.id).status == JobStatus.queued

    assert queue.claim("dead-worker-2", "preview", now=now + 10) is not None
    queue.requeue_expired(now + 10 + settings.lease_seconds + 1)
    failed = services.jobs.get(owner, job.id)
    assert failed.status == JobStatus.failed
    assert failed.error_code == "worker_lost"
    assert "stopped responding 2 times" in failed.error_message
    assert services.keys.get(owner.id).credits_available == 1


def test_a_live_heartbeat_keeps_the_lease(settings):
    services = build_services(settings)
    owner = services.keys.authenticate(services.keys.create("t")[1])
    job = services.jobs.submit(owner, restyle(make_room_photo()))
    now = time.time()
    claim = services.queue.claim("w", "preview", now=now)
    services.queue.heartbeat(claim.token, [job.id], now=now + settings.lease_seconds - 1)
    services.queue.requeue_expired(now + settings.lease_seconds + 1)
    assert services.jobs.get(owner, job.id).status == JobStatus.running


def test_a_late_result_from_a_replaced_worker_is_discarded(settings):
    services = build_services(settings)
    owner = services.keys.authenticate(services.keys.create("t")[1])
    job = services.jobs.submit(owner, restyle(make_room_photo()))
    now = time.time()
    stale = services.queue.claim("slow", "preview", now=now)
    services.queue.requeue_expired(now + settings.lease_seconds + 1)
    fresh = services.queue.claim("fast", "preview", now=now + settings.lease_seconds + 2)
    assert not services.queue.succeed(job.id, stale.token, [], None)
    assert services.queue.succeed(job.id, fresh.token, [], None)


def _start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "roomrender.cli", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_worker_killed_mid_job_leaves_it_to_another_worker(settings):
    services = build_services(settings)
    owner = services.keys.authenticate(services.keys.create("t")[1])
    job = services.jobs.submit(owner, restyle(make_room_photo()))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ROOMRENDER_DATA_DIR": str(settings.data_dir),
        "ROOMRENDER_DATABASE_URL": settings.resolved_database_url(),
        "ROOMRENDER_ENGINE": "tests.slow_engine:slow_engine",
        "ROOMRENDER_LEASE_SECONDS": "2",
        "ROOMRENDER_HEARTBEAT_SECONDS": "0.5",
        "SLOW_ENGINE_STEPS": "30",
        "SLOW_ENGINE_STEP_SECONDS": "0.1",
    }
    first = _start_worker(env)
    try:
        deadline = time.time() + 30
        while True:
            current = services.jobs.get(owner, job.id)
            if current.status == JobStatus.running and current.progress > 0:
                break
            assert time.time() < deadline, "the first worker never started the job"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert services.jobs.get(owner, job.id).status == JobStatus.running

        second = _start_worker(env)
        try:
            while services.jobs.get(owner, job.id).status != JobStatus.succeeded:
                assert time.time() < deadline + 30, services.jobs.get(owner, job.id)
                time.sleep(0.1)
        finally:
            second.terminate()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    finished = services.jobs.get(owner, job.id)
    assert finished.attempts == 2
    assert len(finished.outputs) == 1


def test_a_claim_can_grow_with_jobs_that_arrive_moments_later(settings):
    services = build_services(settings)
    owner = services.keys.authenticate(services.keys.create("t")[1])
    photo = make_room_photo(120, 90)
    first = services.jobs.submit(owner, restyle(photo, n=2))
    claim = services.queue.claim("w", "preview", max_images=4)
    later = [services.jobs.submit(owner, restyle(photo, n=n)) for n in (3, 1)]
    grown = services.queue.claim_more("w", claim, max_images=2)
    assert [row.id for row in grown.rows] == [first.id, later[1].id]
    assert services.jobs.get(owner, later[0].id).status == JobStatus.queued


def test_keys_take_turns_within_a_priority(settings):
    engine = SlowPreviewEngine(steps=1, step_seconds=0)
    services = build_services(settings, engine=engine)
    busy = services.keys.authenticate(services.keys.create("busy")[1])
    quiet = services.keys.authenticate(services.keys.create("quiet")[1])
    # Different sizes, so every job is a batch of its own.
    flood = [services.jobs.submit(busy, restyle(make_room_photo(100 + i, 80))) for i in range(4)]
    single = services.jobs.submit(quiet, restyle(make_room_photo(90, 80)))
    urgent = services.jobs.submit(busy, restyle(make_room_photo(95, 80), priority=1))
    drain(services)
    order = [batch[0] for batch in engine.batches]
    assert order[0] == urgent.id
    assert order[1:3] == [flood[0].id, single.id]
    assert order[3:] == [job.id for job in flood[1:]]


def test_a_jobs_progress_never_goes_back_when_an_engine_counts_again(settings, monkeypatch):
    from roomrender import worker as worker_module
    from roomrender.engines.base import BatchContext, EngineJob, JobResult
    from roomrender.engines.preview.engine import PreviewEngine

    class PhasedEngine(PreviewEngine):
        """Preprocessing counts to 80%, then the images count from zero again."""

        def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
            ids = [job.job_id for job in batch]
            for fraction in (0.4, 0.8, 0.3, 0.6, 0.9):
                context.progress(ids, fraction)
            return super().generate(batch, context)

    monkeypatch.setattr(worker_module, "PROGRESS_WRITE_SECONDS", 0.0)
    services = build_services(settings, engine=PhasedEngine())
    seen: list[float] = []
    services.queue.add_hook(lambda _c, row, event: seen.append(row.progress) if event == "job.progress" else None)
    owner = services.keys.create("t")[0]
    job = services.jobs.submit(owner, GenerationRequest(task="restyle", image=data_uri(make_room_photo())))
    drain(services)
    assert services.jobs.get(owner, job.id).status == JobStatus.succeeded
    assert seen == [0.4, 0.8, 0.9, 1.0], seen  # the 0.3 and 0.6 of the second phase are not shown



def test_poll_reads_give_pooled_connections_back_as_they_found_them(services: Services) -> None:
    """Poll reads on a networked database run in autocommit (no BEGIN, no ROLLBACK round trip):
    the connection goes back to the pool in transactions again, so a later rollback still rolls
    back."""
    if services.db.dialect.name == "sqlite":
        pytest.skip("SQLite poll reads keep a connection per thread, outside the pool")
    key = services.keys.create("t")[0]
    job = services.jobs.submit(key, restyle(make_room_photo()))
    for _ in range(5):
        assert services.jobs.get(key, job.id).queue_position == 1
    for _ in range(services.db.pool.checkedin()):  # each pooled connection in turn (FIFO)
        with services.db.connect() as connection:
            connection.execute(update(jobs).where(jobs.c.id == job.id).values(progress=0.5))
            connection.rollback()
    with services.db.connect() as connection:
        assert connection.execute(select(jobs.c.progress).where(jobs.c.id == job.id)).scalar() == 0
