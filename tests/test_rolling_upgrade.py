"""Rolling upgrades: a worker claims only jobs of the tasks it runs and of the request versions it
knows, so a job written by a newer API waits, queued, for a newer worker instead of failing on an
older one; rows written before jobs had versions (or by an API of that release) are version 1."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert, text

from roomrender.canonical.models import REQUEST_VERSION, GenerationRequest, JobStatus
from roomrender.config import Settings
from roomrender.db.database import current_revision, open_database, upgrade
from roomrender.db.tables import jobs
from roomrender.jobs.records import NewJob
from roomrender.services import Services, build_services
from roomrender.worker import Worker
from tests.conftest import data_uri, make_room_photo
from tests.slow_engine import SlowPreviewEngine

OLD, NEW = REQUEST_VERSION, REQUEST_VERSION + 1


def restyle(photo: bytes) -> GenerationRequest:
    return GenerationRequest(task="restyle", image=data_uri(photo), style="modern")


def status_of(services: Services, job_ids: list[str]) -> dict[str, JobStatus]:
    return {record.id: record.status for record in services.queue.rows(job_ids)}


def versions_of(services: Services, job_ids: list[str]) -> list[int]:
    found = {record.id: record.request_version for record in services.queue.rows(job_ids)}
    return [found[job_id] for job_id in job_ids]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_job_of_a_newer_api_waits_for_a_newer_worker(settings: Settings) -> None:
    engine = SlowPreviewEngine(steps=1, step_seconds=0)
    services = build_services(settings, engine=engine)
    owner = services.keys.authenticate(services.keys.create("t")[1])
    photo = make_room_photo(120, 90)
    api = services.jobs

    api.request_version = OLD  # written before the API was upgraded
    known = api.submit(owner, restyle(photo))
    api.request_version = NEW  # the upgraded API
    newer = api.submit(owner, restyle(photo))  # same batch key as `known`
    new_task = api.submit(owner, GenerationRequest(task="upscale", scale=2,
                                                   image=data_uri(photo)))
    assert versions_of(services, [known.id, newer.id, new_task.id]) == [OLD, NEW, NEW]

    # A worker of the previous release: it knows OLD, and not the upscale task.
    old_tasks = [task for task in engine.supported_tasks() if task.value != "upscale"]
    old_worker = Worker(settings, services.files, engine, services.queue,
                        tasks=[task.value for task in old_tasks], request_version=OLD)
    stop = threading.Event()
    serving = threading.Thread(target=old_worker.run, args=(stop,))
    serving.start()
    try:
        wait_for(lambda: status_of(services, [known.id])[known.id] == JobStatus.succeeded)
        # Queued while it serves: the feed rings it, and it still leaves the job alone.
        while_serving = api.submit(owner, restyle(photo))
        time.sleep(0.5)  # dozens of its polls (worker_poll_seconds is 0.02 here)
        waiting = [newer.id, new_task.id, while_serving.id]
        assert set(status_of(services, waiting).values()) == {JobStatus.queued}
    finally:
        stop.set()
        serving.join(10)
    assert engine.batches == [[known.id]]  # never batched with the newer job of its batch key
    assert api.get(owner, newer.id).queue_position == 1
    assert {record.attempts for record in services.queue.rows(waiting)} == {0}

    new_worker = Worker(settings, services.files, engine, services.queue, request_version=NEW)
    while new_worker.run_once():
        pass
    assert set(status_of(services, waiting).values()) == {JobStatus.succeeded}
    finished = api.get(owner, new_task.id)
    assert finished.outputs and (finished.outputs[0].width, finished.outputs[0].height) == (240, 180)


def test_a_claim_takes_only_the_versions_its_worker_knows(settings: Settings) -> None:
    services = build_services(settings)
    owner = services.keys.authenticate(services.keys.create("t")[1])
    services.jobs.request_version = NEW
    job = services.jobs.submit(owner, restyle(make_room_photo(64, 48)))

    assert services.queue.claim("old", "preview", request_version=OLD) is None
    claim = services.queue.claim("new", "preview", request_version=NEW)
    assert claim is not None and [record.id for record in claim.rows] == [job.id]
    assert claim.rows[0].status == JobStatus.running and claim.rows[0].lease_owner == "new"


def previous_release_row(owner_id: str) -> dict[str, object]:
    """A queued job's row as an API of the release before request versions writes it."""
    new = NewJob(id=str(uuid.uuid4()), owner_id=owner_id, dialect="native", engine="preview",
                 batch_key="preview:restyle:64x48",
                 request=GenerationRequest(task="restyle", image="in-photo.png"), cost=1,
                 max_attempts=3, request_version=OLD)
    return {name: value for name, value in new.columns(time.time(), 1).items()
            if name != "request_version"}


def test_rows_of_the_previous_release_are_version_one_and_claimed(
        empty_database_url: str, tmp_path: Path) -> None:
    db = open_database(empty_database_url)
    upgrade(db, "0005")  # the schema before request versions
    before = previous_release_row("k1")
    with db.begin() as connection:
        connection.execute(insert(jobs).values(**before))
    upgrade(db)
    # An API process not upgraded yet keeps writing rows without the column.
    during = previous_release_row("k2")
    with db.begin() as connection:
        connection.execute(insert(jobs).values(**during))
    db.dispose()

    services = build_services(Settings(data_dir=tmp_path, database_url=empty_database_url))
    try:
        ids = [str(before["id"]), str(during["id"])]
        assert versions_of(services, ids) == [1, 1]
        claim = services.queue.claim("first-release-worker", "preview", request_version=1)
        assert claim is not None and [record.id for record in claim.rows] == ids
    finally:
        services.db.dispose()


def test_a_job_with_a_field_of_a_newer_release_is_shown_and_left_for_a_newer_worker(
        services: Services) -> None:
    owner = services.keys.authenticate(services.keys.create("t")[1])
    row = previous_release_row(owner.id)
    row["request"] = {**row["request"], "future_option": "only a newer worker knows"}  # type: ignore[dict-item]
    row["request_version"] = NEW
    with services.db.begin() as connection:
        connection.execute(insert(jobs).values(**row))

    job = services.jobs.get(owner, str(row["id"]))  # an API of this release shows it
    assert job.status == JobStatus.queued and job.request.image == "in-photo.png"
    assert services.queue.claim("this-release", "preview") is None


def test_a_schema_a_newer_release_migrated_keeps_this_release_running(
        settings: Settings, services: Services, client: TestClient) -> None:
    with services.db.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_next'"))
    assert client.get("/readyz").json() == {"status": "ready"}
    again = build_services(settings)  # starting (SQLite migrates on start: nothing to do)
    try:
        assert current_revision(again.db) == "9999_next"
    finally:
        again.db.dispose()
