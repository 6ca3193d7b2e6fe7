"""No request body is read before its key: a POST whose headers carry no live key is answered
401 in its dialect's shape from its headers alone, and a flood of unauthenticated bodies leaves
the server's memory where it was."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from tests.servers import free_port, run_uvicorn

BODY_ROUTES = {  # path: what the dialect's 401 body holds
    "/v1/jobs": "error",
    "/v1/uploads": "error",
    "/api/v1/generate/standard": "error",
    "/v2/generate": "errors",
    "/v1/predictions": "detail",
    "/v1/models/roomrender/restyle/predictions": "detail",
}


@pytest.mark.parametrize("path", sorted(BODY_ROUTES))
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer rr_not_a_key"},
                                     {"X-API-KEY": "rr_not_a_key"}])
def test_an_unauthenticated_post_is_refused_in_its_dialect(client, path, headers):
    answer = client.post(path, headers=headers, content=b"{" * 1000)
    assert answer.status_code == 401
    assert BODY_ROUTES[path] in answer.json()
    assert answer.headers["connection"] == "close"


def test_a_keyed_post_still_reads_its_body(client, auth):
    answer = client.post("/v1/jobs", headers=auth, json={"task": "restyle"})
    assert answer.status_code in (400, 422)  # its body was read and judged, not its key


def _post_head(port: int, path: str, length: int, headers: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {length}\r\n{headers}\r\n".encode())
    return sock


def _status_of(sock: socket.socket) -> int:
    answer = b""
    while b"\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return int(answer.split(b" ", 2)[1])


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the RSS from /proc")
def test_an_unauthenticated_flood_is_answered_from_headers_and_costs_no_memory(app):
    port = free_port()
    megabytes = 24
    with run_uvicorn(app, port):
        # Headers and a sliver of a 24 MiB body: the 401 comes without waiting for the rest.
        for path in ("/v1/jobs", "/v1/uploads", "/api/v1/generate/standard", "/v2/generate",
                     "/v1/predictions"):
            with _post_head(port, path, megabytes << 20) as sock:
                sock.sendall(b"{" * 65536)
                assert _status_of(sock) == 401, path

        def flood(statuses: list[int]) -> None:
            with _post_head(port, "/v1/jobs", megabytes << 20,
                            "Authorization: Bearer rr_not_a_key\r\n") as sock:
                try:
                    for _ in range(megabytes):
                        sock.sendall(b"x" * (1 << 20))
                except OSError:
                    pass  # the server answered and closed: the rest was never wanted
                try:
                    statuses.append(_status_of(sock))
                except OSError:
                    statuses.append(401)  # reset after its answer, before this read

        before = _rss_bytes()
        for _ in range(2):
            statuses: list[int] = []
            threads = [threading.Thread(target=flood, args=(statuses,)) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert statuses == [401] * 8
        grown = _rss_bytes() - before
    # 16 bodies of 24 MiB were sent at it; it kept none of them.
    assert grown < 48 << 20, f"RSS grew by {grown >> 20} MiB"
