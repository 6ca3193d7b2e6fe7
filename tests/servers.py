"""Real servers for tests, on 127.0.0.1 and a free port: a static file server and uvicorn; waiting
for a server process to be ready, and stopping server processes."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.services import Services, build_services


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_files(files: dict[str, tuple[bytes, str]]) -> Iterator[str]:
    """Serve `{path: (body, content type)}` over HTTP; any other path is a 404. Yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path)
            if found is None:
                self.send_error(404)
                return
            body, content_type = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="file-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def run_uvicorn(app: FastAPI, port: int) -> Iterator[str]:
    """Run `app` under a real uvicorn in a thread (its lifespan starts the app's workers)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def wait_ready(base: str, *, seconds: float = 60.0, process: subprocess.Popen[bytes] | None = None,
               log: Path | None = None) -> None:
    """Until `base`/readyz answers 200; fails after `seconds`, or at once if `process` exited
    (with the tail of its `log`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            said = log.read_text()[-2000:] if log is not None else ""
            raise AssertionError(f"the server at {base} exited: {said}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} did not start")


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], grace: float = 10.0) -> None:
    """SIGTERM to each one still running, then wait for each; killed after `grace` seconds."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class LiveService:
    """roomrender served by a real uvicorn: its base URL, a key's token, its services."""

    base_url: str
    token: str
    services: Services


@contextmanager
def live_service(data_dir: Path, database_url: str, *, storage_url: str = "", credits: int = 10,
                 workers: int = 1) -> Iterator[LiveService]:
    """The service on 127.0.0.1 (a socket bound before it starts: no port race) with `workers`
    in-process workers and one key holding `credits`, as a vendor's client meets it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(data_dir=data_dir, public_base_url=base_url, database_url=database_url,
                        storage_url=storage_url, worker_poll_seconds=0.05, heartbeat_seconds=0.5)
    services = build_services(settings)
    _, token = services.keys.create("client-app", credits=credits)
    app = create_app(settings, services=services, workers=workers, janitor=False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn",
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield LiveService(base_url, token, services)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        services.db.dispose()
