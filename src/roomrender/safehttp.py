"""Outbound HTTP (image fetches, webhooks) that reaches only the addresses it checked.

A name checked once and resolved again at connection time may answer a private address the
second time (DNS rebinding). Here the network backend under httpx does both at once: every
connection, redirect hops included, resolves its host through `netsafety.public_addresses` and
connects to one of exactly those addresses. The URL keeps its name, so TLS sends it as SNI and
checks the certificate against it. Proxies from the environment are never used (they would
connect on our behalf, past the check), and a whole exchange can be held to a total deadline
(`deadline`), not merely each read to a timeout: a server dripping a byte at a time cannot hold
a request for long.
"""

from __future__ import annotations

import contextvars
import ssl
import time
import typing
from collections.abc import Iterator
from contextlib import contextmanager

import httpcore
import httpx

from roomrender.netsafety import public_addresses

# The monotonic time by which the exchange in progress on this thread must be over.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every connect, read and write inside must finish within `seconds` from now, in all."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _bounded(timeout: float | None, expired: type[Exception]) -> float | None:
    end = _DEADLINE.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise expired("the total time allowed for this request is over")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        # server_hostname is the URL's name: SNI and the certificate check are on the name.
        return _DeadlineStream(self._inner.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Resolves and checks each connection's host, then connects to one of the addresses
    checked (the next one when a connection is refused)."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None
                    ) -> httpcore.NetworkStream:
        addresses = public_addresses(host, port, allow_private=self.allow_private)
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(
                    address, port, _bounded(timeout, httpcore.ConnectTimeout), local_address,
                    socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as refused:
                failure = refused
                continue
            return _DeadlineStream(stream)
        assert failure is not None
        raise failure

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None
                            ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not reached by outbound requests")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """httpx's own transport (its request mapping and errors) over a pool on `PinnedBackend`."""

    def __init__(self, *, allow_private: bool, ssl_context: ssl.SSLContext,
                 limits: httpx.Limits) -> None:
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx offers no argument for the network backend: its pool is replaced by the same
        # pool on ours (tests/test_outbound_http.py fails if this ever stops pinning).
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(allow_private=allow_private))


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificate checks against `ca_file`, or certifi's roots (never the environment's)."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return httpx.create_ssl_context(trust_env=False)


def pinned_client(*, allow_private: bool, timeout: float, ca_file: str | None = None,
                  max_connections: int = 10, headers: dict[str, str] | None = None) -> httpx.Client:
    """An httpx client whose every connection goes to a checked address; redirects are not
    followed (each hop is a new request the caller decides on)."""
    limits = httpx.Limits(max_connections=max_connections,
                          max_keepalive_connections=max_connections)
    transport = PinnedTransport(allow_private=allow_private, ssl_context=tls_context(ca_file),
                                limits=limits)
    return httpx.Client(transport=transport, timeout=httpx.Timeout(timeout), trust_env=False,
                        follow_redirects=False, headers=headers)
