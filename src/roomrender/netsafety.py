"""Refusing URLs that would reach the server's own network (SSRF), for fetches and webhooks."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse

from roomrender.canonical.errors import UrlRefused


def _is_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        # Carrier-grade NAT and cloud metadata ranges (169.254.169.254 is link-local already).
        or address in ipaddress.ip_network("100.64.0.0/10")
    )


def check_url(url: str, *, allow_private: bool) -> str:
    """Raise UrlRefused unless `url` is http(s) to a public address; return the host.

    The host is resolved here, so a public name that points at a private address is refused too.
    """
    return checked_addresses(url, allow_private=allow_private)[0]


def checked_addresses(url: str, *, allow_private: bool) -> tuple[str, list[str]]:
    """Like check_url, and also the public addresses the host resolved to (none when
    `allow_private`, which skips resolving): connect to one of them so the name cannot be
    re-resolved to a private address between the check and the connection."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise UrlRefused(f"only http and https URLs are accepted, not {parsed.scheme or 'no scheme'!r}")
    host = parsed.hostname
    if not host:
        raise UrlRefused(f"the URL {url!r} has no host")
    if allow_private:
        return host, []
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError as bad_port:
        raise UrlRefused(f"the URL {url!r} has an invalid port") from bad_port
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as unresolved:
        raise UrlRefused(f"the host {host!r} could not be resolved") from unresolved
    addresses: list[str] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        addresses.append(str(address))
        if _is_private(address):
            raise UrlRefused(
                f"the URL {url!r} points at a private, loopback or link-local address ({address}); "
                "such addresses are refused (set ROOMRENDER_ALLOW_PRIVATE_URLS=1 for local testing)"
            )
    return host, addresses
