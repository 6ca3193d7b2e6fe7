"""Events without polling: SSE watchers, idle workers and the webhook dispatcher are woken by the
change feed (transitions published after commit), not by short polls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from roomrender.app import create_app
from roomrender.canonical.models import GenerationRequest
from roomrender.config import Settings
from roomrender.db.tables import jobs
from roomrender.events.feed import Change
from roomrender.services import Services, build_services
from tests.conftest import data_uri, make_room_photo
from tests.databases import is_postgresql
from tests.event_streams import Stream
from tests.servers import free_port, run_uvicorn, stop_processes, wait_ready
from tests.slow_engine import SlowPreviewEngine
from tests.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def server(services: Services, workers: int = 0) -> Iterator[httpx.Client]:
    """A real uvicorn serving `services`, and a client with a fresh key."""
    plaintext = services.keys.create("watcher")[1]
    app = create_app(services.settings, services=services, workers=workers, janitor=False)
    with run_uvicorn(app, free_port()) as base, httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {plaintext}"}, timeout=30) as client:
        yield client


def submit(client: httpx.Client, **extra: Any) -> dict[str, Any]:
    upload = client.post("/v1/uploads", files={"file": ("room.jpg", make_room_photo(64, 48))})
    body = {"task": "restyle", "image": upload.json()["id"], "style": "modern", **extra}
    created = client.post("/v1/jobs", json=body)
    assert created.status_code == 202, created.text
    return dict(created.json())


@contextmanager
def working(services: Services) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=services.new_worker().run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def room_request(**extra: Any) -> GenerationRequest:
    return GenerationRequest(task="restyle", image=data_uri(make_room_photo(64, 48)),
                             style="modern", **extra)


def statuses(events: list[tuple[str, Any]]) -> list[str]:
    """The statuses seen, each run of equal ones once."""
    seen: list[str] = []
    for name, data in events:
        if name == "status" and (not seen or seen[-1] != data["status"]):
            seen.append(data["status"])
    return seen


def test_a_watcher_sees_queued_running_succeeded_of_a_10_ms_job(settings: Settings) -> None:
    services = build_services(settings, engine=SlowPreviewEngine(steps=1, step_seconds=0.01))
    with server(services) as client:
        jobs_ = [submit(client) for _ in range(3)]
        streams = [client.stream("GET", f"/v1/jobs/{job['id']}/events") for job in jobs_]
        seen: list[list[tuple[str, Any]]] = []
        try:
            opened = [Stream(stream.__enter__()) for stream in streams]
            firsts = [stream.next() for stream in opened]  # each watcher is in before work starts
            assert [data["status"] for _name, data in firsts] == ["queued"] * 3
            with working(services):
                seen = [[first, *stream.until_end()] for first, stream in zip(firsts, opened,
                                                                              strict=True)]
        finally:
            for stream in streams:
                stream.__exit__(None, None, None)
    for events, job in zip(seen, jobs_, strict=True):
        assert statuses(events) == ["queued", "running", "succeeded"], events
        assert events[-1] == ("end", {"id": job["id"], "status": "succeeded"})
        assert len(events[-2][1]["outputs"]) == 1


def test_an_idle_worker_starts_a_submitted_job_within_100_ms(settings: Settings) -> None:
    # The fallback poll is 30 s: only the change feed can wake the worker in time.
    services = build_services(settings.model_copy(update={"worker_poll_seconds": 30.0}))
    key = services.keys.create("t")[0]
    claims: list[float] = []
    claim = services.queue.claim

    def counted_claim(*args: Any, **kwargs: Any) -> Any:
        claims.append(time.monotonic())
        return claim(*args, **kwargs)

    services.queue.claim = counted_claim  # type: ignore[method-assign]
    with working(services):
        time.sleep(1.0)
        idle_claims = len(claims)
        job = services.jobs.submit(key, room_request())
        deadline = time.time() + 10
        while True:
            with services.db.connect() as connection:
                row = connection.execute(select(jobs).where(jobs.c.id == job.id)).one()
            if row.started_at is not None or time.time() > deadline:
                break
            time.sleep(0.01)
    assert idle_claims <= 2, "the idle worker polled"
    assert row.started_at is not None
    assert row.started_at - row.created_at < 0.1, row.started_at - row.created_at


def test_an_idle_dispatcher_delivers_a_new_webhook_at_once(settings: Settings) -> None:
    services = build_services(settings.model_copy(update={
        "webhook_poll_seconds": 30.0, "allow_private_urls": True}))
    key = services.keys.create("t")[0]
    dispatcher = services.new_dispatcher()
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    with Receiver() as receiver:
        thread.start()
        try:
            time.sleep(0.5)
            job = services.jobs.submit(key, room_request(webhook=receiver.url()))
            services.queue.fail(job.id, "test", "failed on purpose")
            failed_at = time.time()
            deadline = failed_at + 10
            while not receiver.calls and time.time() < deadline:
                time.sleep(0.01)
            delivered_after = time.time() - failed_at
        finally:
            stop.set()
            thread.join(10)
            dispatcher.close()
    assert [json.loads(call.body)["type"] for call in receiver.calls] == ["job.failed"]
    assert delivered_after < 1.0, delivered_after


def test_queue_positions_move_for_a_watcher_of_a_queued_job(settings: Settings) -> None:
    # A lane with one watcher recomputes its positions at each move: no setting is changed.
    services = build_services(settings.model_copy(update={"batch_max_images": 1}),
                              engine=SlowPreviewEngine(steps=2, step_seconds=0.05))
    with server(services) as client:
        submitted = [submit(client) for _ in range(3)]
        with client.stream("GET", f"/v1/jobs/{submitted[2]['id']}/events") as response:
            stream = Stream(response)
            first = stream.next()
            with working(services):
                events = [first, *stream.until_end()]
    positions = [data["queue_position"] for name, data in events
                 if name == "status" and data["status"] == "queued"]
    assert positions == [3, 2, 1], events
    assert statuses(events) == ["queued", "running", "succeeded"]


def test_keep_alives_go_out_by_the_clock_while_nothing_changes(settings: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from roomrender.api.native import routes as native

    monkeypatch.setattr(native, "EVENT_KEEPALIVE_SECONDS", 0.2)
    services = build_services(settings)
    with server(services) as client:
        job = submit(client)
        with client.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
            stream = Stream(response)
            assert stream.next()[0] == "status"
            started = time.monotonic()
            assert stream.next() == ("comment", "keep-alive")
            assert stream.next() == ("comment", "keep-alive")
            assert 0.3 <= time.monotonic() - started < 2.0
        # The client left: its watch is gone at once, not at the next write.
        deadline = time.time() + 5
        while services.watchers.watching() and time.time() < deadline:
            time.sleep(0.01)
        assert services.watchers.watching() == 0


def test_a_shutting_down_server_ends_open_streams_at_once(settings: Settings) -> None:
    services = build_services(settings)
    plaintext = services.keys.create("watcher")[1]
    app = create_app(settings, services=services, workers=0, janitor=False)
    with run_uvicorn(app, free_port()) as base, httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {plaintext}"}, timeout=30) as client:
        job = submit(client)
        with client.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
            lines = response.iter_lines()
            assert next(lines) == "event: status"
            next(lines)  # its data
            told = time.monotonic()
            app.state.draining.set()  # what SIGTERM does first
            rest = list(lines)  # the stream ends
            ended_after = time.monotonic() - told
    assert "retry: 1000" in rest, rest
    assert ended_after < 1.0


def test_many_watchers_of_one_job_share_its_first_read(settings: Settings) -> None:
    services = build_services(settings)
    reads: list[str] = []
    owned = services.queue.owned

    def counted(job_id: str, owner_id: str) -> Any:
        reads.append(job_id)
        return owned(job_id, owner_id)

    services.queue.owned = counted  # type: ignore[method-assign]
    with server(services) as client:
        job = submit(client)
        reads.clear()
        streams = [client.stream("GET", f"/v1/jobs/{job['id']}/events") for _ in range(5)]
        try:
            opened = [Stream(stream.__enter__()) for stream in streams]  # kept open
            firsts = [stream.next() for stream in opened]
        finally:
            for stream in streams:
                stream.__exit__(None, None, None)
    assert {data["status"] for _name, data in firsts} == {"queued"}
    assert reads == [job["id"]]


def test_changes_are_published_after_commit_and_never_on_rollback(services: Services) -> None:
    seen: list[tuple[Change, bool]] = []
    key = services.keys.create("t")[0]
    job = services.jobs.submit(key, room_request())

    def on_change(change: Change) -> None:
        # Another connection already sees what the change says.
        with services.db.connect() as connection:
            status = connection.execute(select(jobs.c.status).where(
                jobs.c.id == change.key)).scalar()
        seen.append((change, status == change.data["row"]["status"] if change.data else False))

    subscription = services.queue.feed.subscribe("job", on_change)
    try:
        with pytest.raises(RuntimeError), services.queue.feed.transaction(services.db) as connection:
            connection.execute(update(jobs).where(jobs.c.id == job.id).values(progress=0.5))
            services.queue.emit(connection, [job.id], "job.progress")
            raise RuntimeError("rolled back")
        assert seen == []
        assert services.queue.cancel_queued(job.id)
    finally:
        subscription.close()
    assert [(change.data["event"], visible) for change, visible in seen if change.data] == [
        ("job.canceled", True)]


@contextmanager
def processes(*commands: tuple[list[str], dict[str, str]], logs: Path) -> Iterator[None]:
    started = []
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for index, (command, env) in enumerate(commands):
            log = open(logs / f"process{index}.log", "wb")  # noqa: SIM115 - closed below
            started.append((subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env,
                                             stdout=log, stderr=subprocess.STDOUT), log))
        yield
    finally:
        stop_processes(process for process, _log in started)
        for _process, log in started:
            log.close()


def process_env(settings: Settings, database_url: str, **extra: str) -> dict[str, str]:
    # This checkout's code, wherever the environment's roomrender is installed from.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
           "ROOMRENDER_DATA_DIR": str(settings.data_dir),
           "ROOMRENDER_ENGINE": "tests.slow_engine:slow_engine", "SLOW_ENGINE_STEPS": "3",
           "SLOW_ENGINE_STEP_SECONDS": "0.05", **extra}
    if database_url:
        env["ROOMRENDER_DATABASE_URL"] = database_url
    return env


@pytest.mark.slow
def test_a_watcher_on_api_process_a_sees_a_worker_of_api_process_b(
        settings: Settings, database_url: str, tmp_path: Path) -> None:
    if not is_postgresql(database_url):
        pytest.skip("several API processes share a PostgreSQL (set ROOMRENDER_TEST_DATABASE_URL)")
    services = build_services(settings)
    headers = {"Authorization": f"Bearer {services.keys.create('t')[1]}"}
    services.db.dispose()
    bases = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    serve = ["-m", "roomrender.cli", "serve", "--log-level", "warning"]
    env = process_env(settings, database_url)
    a_process = ([*serve, "--port", bases[0].rsplit(":", 1)[1], "--workers", "0"],
                 {**env, "ROOMRENDER_PUBLIC_BASE_URL": bases[0]})
    b_process = ([*serve, "--port", bases[1].rsplit(":", 1)[1], "--workers", "1"],
                 {**env, "ROOMRENDER_PUBLIC_BASE_URL": bases[1],
                  "ROOMRENDER_WORKER_POLL_SECONDS": "60"})
    with processes(a_process, logs=tmp_path), httpx.Client(base_url=bases[0], headers=headers,
                                                           timeout=30) as a:
        wait_ready(bases[0])
        job = submit(a)
        with a.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
            stream = Stream(response)
            first = stream.next()
            # B starts only now; its worker runs the job, A hears of it through NOTIFY.
            with processes(b_process, logs=tmp_path / "b"):
                events = [first, *stream.until_end()]
    assert statuses(events) == ["queued", "running", "succeeded"], events
    assert any(0 < data["progress"] < 100 for name, data in events if name == "status"), events


@pytest.mark.slow
def test_a_watcher_sees_a_worker_process_sharing_the_sqlite_file(
        settings: Settings, database_url: str, tmp_path: Path) -> None:
    if database_url:
        pytest.skip("the SQLite safety poll")
    services = build_services(settings)
    with server(services) as client:
        job = submit(client)
        with client.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
            stream = Stream(response)
            assert stream.next()[1]["status"] == "queued"
            with processes((["-m", "roomrender.cli", "worker"], process_env(settings, "")),
                           logs=tmp_path):
                started = time.monotonic()
                events = stream.until_end()
                took = time.monotonic() - started
    assert statuses(events)[-1] == "succeeded", events
    assert took < 20, took
