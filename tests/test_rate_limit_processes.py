"""The rate limit of a key holds across API processes: two `roomrender serve` processes on one
database count in one Redis (ROOMRENDER_RATE_LIMIT_STORAGE)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from roomrender.services import build_services
from tests.rate_windows import away_from_window_edge
from tests.servers import free_port, stop_processes, wait_ready

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private redis-server on a free port, for this test alone."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: the shared-store rate limit cannot be tested")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                import redis

                redis.Redis(port=port).ping()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop_processes([process])


def serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "roomrender.cli", "serve", "--workers", "0", "--port", str(port),
             "--log-level", "warning"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_two_api_processes_share_one_rate_limit_in_redis(settings, redis_url, tmp_path):
    services = build_services(settings)
    plaintext = services.keys.create("shared", rate_limit="10/hour")[1]
    services.db.dispose()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "ROOMRENDER_DATA_DIR": str(settings.data_dir),
        "ROOMRENDER_DATABASE_URL": settings.resolved_database_url(),
        "ROOMRENDER_RATE_LIMIT_STORAGE": redis_url,
    }
    env.pop("ROOMRENDER_PUBLIC_BASE_URL", None)
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"api-{index}.log" for index in range(2)]
    processes = [serve(env, port, log) for port, log in zip(ports, logs, strict=True)]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base, process, log in zip(bases, processes, logs, strict=True):
            wait_ready(base, process=process, log=log)
        headers = {"Authorization": f"Bearer {plaintext}"}
        away_from_window_edge()
        codes = []
        for index in range(16):
            answer = httpx.get(f"{bases[index % 2]}/v1/account", headers=headers, timeout=10)
            codes.append(answer.status_code)
            if answer.status_code == 429:
                assert answer.headers["retry-after"]
        # Ten in all, whichever process answered: each alone would have let ten through.
        assert codes == [200] * 10 + [429] * 6, codes
    finally:
        stop_processes(processes, grace=15)
