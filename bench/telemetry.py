"""What the request telemetry (api/telemetry.py) costs per request, measured in-process.

Calls the ASGI app directly (no sockets, no server) for `GET /healthz` and `GET /v1/jobs/{id}`
(a finished job), N times each, with the middleware and with it taken out of the same app, and
prints the CPU microseconds per request (process time, so other load on the machine counts
little) and the difference.

    .venv/bin/python bench/telemetry.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from fastapi import FastAPI  # noqa: E402
from tests.conftest import data_uri, drain, make_room_photo  # noqa: E402

from roomrender.api.telemetry import RequestTelemetry  # noqa: E402
from roomrender.app import create_app  # noqa: E402
from roomrender.canonical.models import GenerationRequest  # noqa: E402
from roomrender.config import Settings  # noqa: E402
from roomrender.services import build_services  # noqa: E402


def build(without_telemetry: bool) -> tuple[FastAPI, str, str]:
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="roomrender-bench-")))
    services = build_services(settings)
    plaintext = services.keys.create("bench")[1]
    owner = services.keys.authenticate(plaintext)
    assert owner is not None
    job = services.jobs.submit(owner, GenerationRequest(
        task="restyle", image=data_uri(make_room_photo()), style="modern"))
    drain(services)
    app = create_app(settings, services=services, workers=0, janitor=False, webhooks=False)
    if without_telemetry:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not RequestTelemetry]
    return app, plaintext, job.id


async def call(app: Any, path: str, key: str, times: int) -> float:
    """CPU seconds for `times` requests."""
    headers = [(b"authorization", f"Bearer {key}".encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": headers, "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000)}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(200):  # warm up: caches, compiled queries
        await app(dict(scope), receive, send)
    started = time.process_time()
    for _ in range(times):
        await app(dict(scope), receive, send)
    spent = time.process_time() - started
    assert set(statuses) == {200}, set(statuses)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, CPython {platform.python_version()}; "
          f"{args.requests} requests per figure, best of {args.rounds}")
    apps = {label: build(label == "without") for label in ("with", "without")}
    for endpoint in ("/healthz", "/v1/jobs/{id}"):
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for label, (app, key, job_id) in apps.items():
                path = endpoint.replace("{id}", job_id)
                seconds = asyncio.run(call(app, path, key, args.requests))
                best[label] = min(best.get(label, float("inf")), seconds / args.requests * 1e6)
        print(f"GET {endpoint:16s} without {best['without']:6.1f} µs   with {best['with']:6.1f} µs"
              f"   telemetry {best['with'] - best['without']:5.1f} µs per request")


if __name__ == "__main__":
    main()
