"""The queue under concurrent claimers, worker pipelines, and outputs of a worker that died."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from roomrender.canonical.models import GenerationRequest
from roomrender.config import Settings
from roomrender.db.tables import files, jobs
from roomrender.services import Services, build_services
from roomrender.storage import FileMissing
from tests.conftest import data_uri
from tests.fakes_scale import FakeEngine


@pytest.fixture
def fake(settings: Settings) -> Iterator[Services]:
    built = build_services(settings, engine=FakeEngine())
    yield built
    built.db.dispose()


def submit_many(services: Services, count: int, **fields: object) -> list[str]:
    owner, _ = services.keys.create("load")
    request = GenerationRequest(task="text_to_image", prompt="a loft", **fields)  # type: ignore[arg-type]
    return [services.jobs.submit(owner, request).id for _ in range(count)]


def test_concurrent_claimers_never_share_a_job(fake: Services) -> None:
    ids = submit_many(fake, 160)
    started: list[tuple[str, str]] = []
    fake.queue.add_hook(lambda _c, row, event: started.append((row.id, row.claim_token))
                        if event == "job.started" else None)
    errors: list[BaseException] = []

    def work() -> None:
        worker = fake.new_worker()
        worker.max_images = 3
        try:
            while worker.run_once():
                pass
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert Counter(job_id for job_id, _ in started) == Counter(ids)  # each claimed exactly once
    with fake.db.connect() as connection:
        statuses = Counter(connection.execute(select(jobs.c.status)).scalars())
        per_job = Counter(connection.execute(
            select(files.c.job_id).where(files.c.kind == "output")).scalars())
    assert statuses == {"succeeded": 160}
    assert per_job == dict.fromkeys(ids, 1)


def test_a_worker_takes_only_its_pipelines(fake: Services, room_jpeg: bytes) -> None:
    owner, _ = fake.keys.create("pipelines")
    photo = data_uri(room_jpeg)
    segment = fake.jobs.submit(owner, GenerationRequest(task="segment", image=photo)).id
    upscale = fake.jobs.submit(owner, GenerationRequest(task="upscale", image=photo, scale=2)).id

    assert not fake.new_worker(pipelines=["fake:seg"]).run_once()  # whole fields only
    assert not fake.new_worker(pipelines=["other"]).run_once()
    assert fake.new_worker(pipelines=["fake:segment", "nope"]).run_once()
    owner_jobs = {job.id: job.status.value for job in fake.jobs.list(owner).jobs}
    assert owner_jobs == {segment: "succeeded", upscale: "queued"}
    assert fake.new_worker(pipelines=["fake"]).run_once()
    assert fake.jobs.get(owner, upscale).status.value == "succeeded"


def test_outputs_of_a_job_that_never_succeeded_are_cleaned_up(fake: Services) -> None:
    [job_id] = submit_many(fake, 1)
    worker = fake.new_worker()
    claim = fake.queue.claim(worker.worker_id, "fake")
    assert claim is not None
    batch = worker._load_inputs(claim, None)  # type: ignore[arg-type]
    [images] = fake.engine.generate(batch, _NoContext())  # type: ignore[arg-type]
    # The worker stores the outputs, then dies before `succeed`.
    [output] = worker._store([(batch[0], images)], claim)[job_id]  # type: ignore[misc]
    assert fake.storage.get(output["key"])
    with fake.db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(files).where(
            files.c.job_id == job_id)).scalar_one() == 0
    assert fake.files.delete_expired() == 0
    assert fake.files.delete_expired(now=time.time() + 3601) == 1
    with pytest.raises(FileMissing):
        fake.storage.get(output["key"])


def test_outputs_of_a_claim_that_lost_its_job_are_discarded(fake: Services) -> None:
    [job_id] = submit_many(fake, 1)
    worker = fake.new_worker()
    claim = fake.queue.claim(worker.worker_id, "fake")
    assert claim is not None
    fake.queue.requeue_expired(now=time.time() + 60)  # the lease ran out: the job is queued again
    fake.queue.claim("another-worker", "fake", now=time.time() + 60)
    worker._run_claim(claim)
    with fake.db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(files)).scalar_one() == 0
        row = connection.execute(select(jobs).where(jobs.c.id == job_id)).one()
    assert row.status == "running" and row.lease_owner == "another-worker"


class _NoContext:
    def progress(self, job_ids: list[str], fraction: float) -> None:
        return None
