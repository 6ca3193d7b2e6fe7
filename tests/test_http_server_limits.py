"""`roomrender serve`'s uvicorn against slow and bloated clients: a huge header block is refused
without being held, a silent or dripping connection is closed, an idle keep-alive too."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from roomrender.api.http_server import HeadDeadlineH11, uvicorn_limits
from tests.servers import free_port


class QuickHeadDeadline(HeadDeadlineH11):
    head_seconds = 0.5


@contextmanager
def served(app: FastAPI) -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            **(uvicorn_limits() | {"http": QuickHeadDeadline,
                                                   "timeout_keep_alive": 1}))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing, or None when it was still open after `seconds`."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


def test_a_huge_header_block_is_refused(app):
    with served(app) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for index in range(256):  # 4 MiB of headers, never ended
                sock.sendall(f"X-Pad-{index}: {'a' * 16384}\r\n".encode())
        except OSError:
            pass  # refused and closed while it still sent
        answer = closed_within(sock, 5)
        assert answer is not None and answer.split(b" ", 2)[1] in (b"400", b"431")


def test_silent_dripping_and_idle_connections_are_closed(app):
    with served(app) as port:
        silent = socket.create_connection(("127.0.0.1", port))
        dripping = socket.create_connection(("127.0.0.1", port))
        idle = socket.create_connection(("127.0.0.1", port))
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        idle.settimeout(5)
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        dripping.sendall(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(4):
            time.sleep(0.2)
            try:
                dripping.sendall(b"X")
            except OSError:
                break
        for sock in (silent, dripping, idle):
            assert closed_within(sock, 3) is not None
            sock.close()
        assert time.monotonic() - started < 4


def test_serve_runs_uvicorn_with_these_limits():
    limits = uvicorn_limits()
    config = uvicorn.Config(FastAPI(), **limits)
    assert config.h11_max_incomplete_event_size == limits["h11_max_incomplete_event_size"] <= 65536
    assert config.limit_concurrency and config.timeout_keep_alive <= 5
