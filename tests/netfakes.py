"""A fake network for outbound-request tests: nothing ever leaves the machine.

Names resolve as a test scripts them (public addresses first, loopback later: DNS rebinding);
a connection to one of those made-up public addresses lands on a local server; any other
connection that is not to the loopback fails the test instead of going out.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

LOOPBACK = ("127.0.0.1", "::1")


class FakeNetwork:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # name -> answers in turn (the last one repeats)
        self.answers: dict[str, list[list[str]]] = {}
        # made-up public address -> the local port it reaches
        self.routes: dict[str, int] = {}
        self.lookups: list[str] = []
        self.connections: list[tuple[str, int]] = []
        real_getaddrinfo = socket.getaddrinfo
        real_create_connection = socket.create_connection

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host)
            if name in self.answers:
                self.lookups.append(name)
                queue = self.answers[name]
                addresses = queue.pop(0) if len(queue) > 1 else queue[0]
                return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP, "", (a, int(port or 0))) for a in addresses]
            return real_getaddrinfo(host, port, *args, **kwargs)

        def create_connection(address: Any, timeout: Any = None, source_address: Any = None,
                              **kwargs: Any) -> socket.socket:
            host, port = str(address[0]), int(address[1])
            try:
                ipaddress.ip_address(host)
            except ValueError:
                host = str(getaddrinfo(host, port)[0][4][0])  # as socket.create_connection does
            self.connections.append((host, port))
            if host in self.routes:
                return real_create_connection(("127.0.0.1", self.routes[host]), timeout)
            if host not in LOOPBACK:
                raise AssertionError(f"a test tried to connect off the machine, to {host}")
            return real_create_connection((host, port), timeout)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket, "create_connection", create_connection)

    def resolve(self, name: str, *answers: list[str]) -> None:
        self.answers[name] = list(answers)

    def route(self, public_address: str, port: int) -> None:
        self.routes[public_address] = port


@dataclass
class Seen:
    path: str
    host: str


@dataclass
class Site:
    """A local HTTP(S) server: `pages` maps a path to (status, headers, body); `drip` sends the
    body a byte every `drip` seconds."""

    pages: dict[str, tuple[int, dict[str, str], bytes]]
    drip: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    port: int = 0


@contextmanager
def serve_site(site: Site, tls: ssl.SSLContext | None = None) -> Iterator[Site]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.seen.append(Seen(self.path, self.headers.get("Host", "")))
            status, headers, body = site.pages.get(self.path, (404, {}, b"no"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if site.drip:
                    for index in range(len(body)):
                        self.wfile.write(body[index:index + 1])
                        self.wfile.flush()
                        time.sleep(site.drip)
                else:
                    self.wfile.write(body)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
