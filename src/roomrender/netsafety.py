"""Refusing URLs that would reach the server's own network (SSRF), for fetches and webhooks.

`check_url` is the one check of a URL a client gives (an image to fetch, a webhook): its form,
then the addresses its host resolves to. `public_addresses` is the resolving half, used again at
connection time by `roomrender.safehttp`, which connects to exactly the addresses it checked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

import idna

from roomrender.canonical.errors import UrlRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
# Control characters (tabs and newlines too) and lone surrogates: parsers disagree on them
# (urllib drops tabs and newlines, httpx refuses them), so a URL holding one is refused before
# anyone parses it. A space is left alone: httpx encodes it.
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(address: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, 6to4, Teredo, NAT64):
    packets to it may reach them."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in network for network in _NAT64) or address in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _is_private_one(address: Address) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        # Carrier-grade NAT and cloud metadata ranges (169.254.169.254 is link-local already).
        or (isinstance(address, ipaddress.IPv4Address) and address in _CARRIER_GRADE_NAT)
    )


def is_private(address: Address) -> bool:
    """Private, loopback, link-local, reserved... itself or through an IPv4 address it carries."""
    return _is_private_one(address) or any(_is_private_one(v4) for v4 in embedded_ipv4(address))


def check_url_form(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL that parses cleanly; UrlRefused otherwise.
    No resolving: the form alone."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    bad = _UNSAFE_CHARACTERS.search(url)
    if bad is not None:
        raise UrlRefused(f"the URL {url[:100]!r} holds a control character "
                         f"({bad.group()!r} at position {bad.start()}); encode it")
    try:
        parsed = urlsplit(url)
        port = parsed.port
        host = parsed.hostname
    except ValueError as broken:
        raise UrlRefused(f"the URL {url[:100]!r} could not be parsed: {broken}") from broken
    if parsed.scheme not in ("http", "https"):
        raise UrlRefused(f"only http and https URLs are accepted, not {parsed.scheme or 'no scheme'!r}")
    if not host:
        raise UrlRefused(f"the URL {url[:100]!r} has no host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        _check_hostname(host)
    return parsed.scheme, host, port or (443 if parsed.scheme == "https" else 80)


def _check_hostname(host: str) -> None:
    """A name DNS can hold: labels of letters, digits and inner hyphens (IDNA for the rest),
    none empty or over 63 characters. Not a space, `%`, a quote or a backslash: such a host can
    never be reached, so a webhook to it could never be delivered."""
    try:
        # Underscores are no part of a host name's rules, yet real hosts carry them.
        idna.encode(host.replace("_", "u"), uts46=True)
    except (idna.IDNAError, UnicodeError) as bad:
        raise UrlRefused(f"the host {host[:100]!r} is not a valid domain name ({bad})") from bad


def public_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses `host` resolves to, all of them public (else UrlRefused), in resolver
    order; with `allow_private`, whatever they are."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as unresolved:
        raise UrlRefused(f"the host {host[:100]!r} could not be resolved") from unresolved
    addresses: list[str] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not allow_private and is_private(address):
            raise UrlRefused(
                f"the host {host[:100]!r} points at a private, loopback or link-local address "
                f"({address}); such addresses are refused (set ROOMRENDER_ALLOW_PRIVATE_URLS=1 "
                "for local testing)"
            )
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise UrlRefused(f"the host {host[:100]!r} could not be resolved")
    return addresses


def check_url(url: str, *, allow_private: bool) -> str:
    """Raise UrlRefused unless `url` is a well-formed http(s) URL to a public address; return
    the host. The host is resolved here, so a public name that points at a private address is
    refused too (and `roomrender.safehttp` checks again the addresses it connects to)."""
    return checked_addresses(url, allow_private=allow_private)[0]


def checked_addresses(url: str, *, allow_private: bool) -> tuple[str, list[str]]:
    """Like check_url, and also the public addresses the host resolved to (none when
    `allow_private`, which skips resolving)."""
    _scheme, host, port = check_url_form(url)
    if allow_private:
        return host, []
    return host, public_addresses(host, port, allow_private=False)
