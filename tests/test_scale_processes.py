"""Many processes on one PostgreSQL: 2 API processes, 4 workers; an API process and a worker are
SIGKILLed halfway.

Delivery is at least once, effects exactly once: every job ends succeeded with one output row,
its credits charged once, and the killed worker's unfinished jobs run again after its lease ran
out. A job may also run twice when a live worker's lease lapses on a busy machine (that is the
contract working); only one of its runs succeeds and keeps its outputs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from roomrender.canonical.models import GenerationRequest
from roomrender.canonical.tasks import cost_of
from roomrender.config import Settings
from roomrender.db.tables import api_keys, files, jobs
from roomrender.services import build_services
from tests.databases import is_postgresql
from tests.event_streams import Stream
from tests.fakes_scale import bulk_enqueue
from tests.servers import stop_processes, wait_ready

JOBS = 2000
HTTP_JOBS = 200
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processes:
    """Subprocesses that are always ended, whatever the test does."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env={**self.env, **env},
                                   stdout=log, stderr=subprocess.STDOUT)
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        stop_processes(self.running)


def sse_until_end(url: str, headers: dict[str, str]) -> list[tuple[str, Any]]:
    with httpx.stream("GET", url, headers=headers, timeout=60) as response:
        return Stream(response).until_end()


def test_jobs_run_exactly_once_across_processes_when_a_worker_dies(
        database_url: str, tmp_path: Path, settings: Settings) -> None:
    if not is_postgresql(database_url):
        pytest.skip("multi-host scale-out is a PostgreSQL deployment (set ROOMRENDER_TEST_DATABASE_URL)")
    deadline = time.time() + 150
    services = build_services(settings.model_copy(update={"engine": "tests.fakes_scale:factory"}))
    owner, api_key = services.keys.create("scale")
    # Most jobs are queued in bulk (one submit at a time would make this a test of submission
    # speed on a 2-core machine); HTTP_JOBS go through the two API processes while workers run.
    bulk = set(bulk_enqueue(services, owner.id,
                            GenerationRequest(task="text_to_image", prompt="bulk"), JOBS - HTTP_JOBS))
    services.db.dispose()
    headers = {"Authorization": f"Bearer {api_key}"}
    engine_log = tmp_path / "engine.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ROOMRENDER_DATABASE_URL": database_url,
           "ROOMRENDER_DATA_DIR": str(settings.data_dir),
           "ROOMRENDER_ENGINE": "tests.fakes_scale:factory", "ROOMRENDER_FAKE_LOG": str(engine_log),
           "ROOMRENDER_FAKE_SECONDS_PER_IMAGE": "0.005", "ROOMRENDER_LEASE_SECONDS": "8",
           "ROOMRENDER_HEARTBEAT_SECONDS": "0.5", "ROOMRENDER_WORKER_POLL_SECONDS": "0.05",
           "ROOMRENDER_BATCH_MAX_IMAGES": "4"}
    processes = Processes(env, tmp_path)
    db = create_engine(database_url, poolclass=NullPool)
    pool: ThreadPoolExecutor | None = None
    try:
        apis, api_processes = [], []
        for index in range(2):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            api_processes.append(processes.start(
                f"api{index}", "-m", "uvicorn", "--factory", "roomrender.app:create_app",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                ROOMRENDER_PUBLIC_BASE_URL=base))
            apis.append(base)
        workers = [processes.start(f"worker{index}", "-c", "from roomrender.cli import app; app()",
                                   "worker") for index in range(4)]
        for base in apis:
            wait_ready(base, seconds=deadline - time.time())

        # Submitted on one API process, followed live on the other.
        first = httpx.post(f"{apis[0]}/v1/jobs", headers=headers,
                           json={"task": "text_to_image", "prompt": "watched"}).json()
        watched: list[tuple[str, Any]] = []
        watcher = threading.Thread(target=lambda: watched.extend(
            sse_until_end(f"{apis[1]}/v1/jobs/{first['id']}/events", headers)))
        watcher.start()

        def submit(index: int) -> str:
            """Submit through one API process; when it is down, retry on the other with the
            same Idempotency-Key (the first may have queued the job before dying)."""
            body = {"task": "text_to_image", "prompt": f"room {index}"}
            idempotency = {"Idempotency-Key": f"load-{index}"}
            with httpx.Client(headers={**headers, **idempotency}, timeout=30) as client:
                for attempt in range(2):
                    try:
                        answer = client.post(f"{apis[(index + attempt) % 2]}/v1/jobs", json=body)
                    except httpx.TransportError:
                        failovers.append(index)
                        continue
                    assert answer.status_code == 202, answer.text
                    return str(answer.json()["id"])
            raise AssertionError(f"job {index} could not be submitted")

        # HTTP submissions go on while an API process and a worker are killed.
        failovers: list[int] = []
        pool = ThreadPoolExecutor(2)
        http_ids = pool.map(submit, range(HTTP_JOBS - 1))
        while True:
            assert time.time() < deadline
            with db.connect() as connection:
                count = connection.execute(select(func.count()).select_from(jobs)).scalar_one()
            if count >= JOBS - HTTP_JOBS + HTTP_JOBS // 3:
                break
            time.sleep(0.02)
        api_processes[0].send_signal(signal.SIGKILL)

        # Kill a worker while it holds a claim: freeze it, check it has running jobs, kill it.
        victim = workers[0]
        orphaned: set[str] = set()
        while not orphaned:
            assert time.time() < deadline, "the victim never held a claim"
            with db.connect() as connection:
                done = connection.execute(select(func.count()).select_from(jobs).where(
                    jobs.c.status == "succeeded")).scalar_one()
            if done < (JOBS - HTTP_JOBS) // 2:
                time.sleep(0.2)
                continue
            os.kill(victim.pid, signal.SIGSTOP)
            with db.connect() as connection:
                orphaned = set(connection.execute(select(jobs.c.id).where(
                    jobs.c.status == "running",
                    jobs.c.lease_owner.like(f"%:{victim.pid}:%"))).scalars())
            if orphaned:
                os.kill(victim.pid, signal.SIGKILL)
                killed_at = time.time()
            else:
                os.kill(victim.pid, signal.SIGCONT)
                time.sleep(0.01)
        victim.wait(10)
        submitted = set(http_ids) | {first["id"]} | bulk
        pool.shutdown()
        assert len(submitted) == JOBS and failovers

        while True:
            with db.connect() as connection:
                left = connection.execute(select(func.count()).select_from(jobs).where(
                    jobs.c.status.in_(["queued", "running"]))).scalar_one()
            if not left:
                break
            assert time.time() < deadline, f"{left} jobs never finished"
            time.sleep(0.2)
        watcher.join(30)

        with db.connect() as connection:
            rows = connection.execute(select(jobs.c.id, jobs.c.status, jobs.c.attempts,
                                             jobs.c.outputs)).all()
            output_rows = connection.execute(select(files.c.job_id, files.c.key, files.c.expires_at)
                                             .where(files.c.kind == "output")).all()
            credits_used = connection.execute(select(api_keys.c.credits_used)
                                              .where(api_keys.c.id == owner.id)).scalar_one()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        processes.stop_all()
        db.dispose()

    # No job lost, none duplicated by a retry after the API process died.
    assert len(rows) == JOBS and {row.id for row in rows} == submitted
    assert Counter(row.status for row in rows) == {"succeeded": JOBS}
    retried = {row.id for row in rows if row.attempts > 1}
    assert orphaned <= retried, (orphaned - retried)
    # Charged once per submitted job, failovers with the same Idempotency-Key included (the bulk
    # rows were inserted without charging).
    assert credits_used == HTTP_JOBS * cost_of(GenerationRequest(task="text_to_image", prompt="room"))
    # Exactly one stored output per job, the one its row points at. Outputs the killed worker
    # stored without succeeding stay pending (no job) and expire, for the janitor to delete.
    adopted = [row for row in output_rows if row.job_id is not None]
    pending = [row for row in output_rows if row.job_id is None]
    assert Counter(row.job_id for row in adopted) == dict.fromkeys(submitted, 1)
    assert {row.job_id: row.key for row in adopted} == {row.id: row.outputs[0]["key"] for row in rows}
    assert len(pending) <= len(orphaned)
    assert all(row.expires_at is not None and row.expires_at < time.time() + 3601 for row in pending)

    runs: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for line in engine_log.read_text().splitlines():
        what, job_id, pid, at = line.split()
        if what == "start":
            runs[job_id].append((int(pid), float(at)))
    assert set(runs) == submitted
    for job_id in orphaned:
        # Run again after the killed worker's lease ran out, by another worker.
        survivors = [at for pid, at in runs[job_id] if pid != victim.pid]
        assert survivors and min(survivors) > killed_at, (job_id, runs[job_id])

    assert watched and watched[-1][0] == "end" and watched[-1][1]["status"] == "succeeded", watched
    assert any(event == "status" and data["status"] in ("queued", "running")
               for event, data in watched)
