"""Outbound requests (image fetches, webhooks) reach only addresses that were checked public:
no DNS rebinding, over https too, through redirects, past no proxy; within a total deadline.

Every test runs on a fake network (tests/netfakes.py): names resolve as scripted, and made-up
public addresses land on local servers; nothing leaves the machine.
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest
import trustme

from roomrender.canonical.errors import FetchFailed, UrlRefused
from roomrender.images import ImageLimits, fetch
from roomrender.netsafety import check_url, is_private
from tests.conftest import make_room_photo
from tests.netfakes import FakeNetwork, Site, serve_site

LIMITS = ImageLimits(max_bytes=2_000_000, max_pixels=10_000_000)
PUBLIC = "93.184.215.14"  # made up: the fake network routes it to a local server
PNG = make_room_photo(64, 48, fmt="PNG")


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
    return FakeNetwork(monkeypatch)


def image_site() -> Site:
    return Site({"/room.png": (200, {"Content-Type": "image/png"}, PNG)})


def test_a_name_rebound_to_loopback_after_the_check_is_not_fetched_from_loopback(network):
    with serve_site(image_site()) as public, serve_site(image_site()) as internal:
        # The check sees a public address; asked again, the name answers the loopback, where an
        # internal service listens on the URL's port.
        network.resolve("rebind.test", [PUBLIC], ["127.0.0.1"])
        network.route(PUBLIC, public.port)
        url = f"http://rebind.test:{internal.port}/room.png"
        try:
            data = fetch(url, LIMITS, timeout=5, allow_private=False)
        except UrlRefused:
            data = None
        assert internal.seen == []
        # Fetched from a checked public address (or refused): never from the loopback.
        assert data in (None, PNG)


def test_a_fetch_connects_to_the_address_it_checked_with_the_name_as_host(network):
    with serve_site(image_site()) as public:
        network.resolve("photos.test", [PUBLIC], ["127.0.0.1"])
        network.route(PUBLIC, public.port)
        data = fetch(f"http://photos.test:{public.port}/room.png", LIMITS, timeout=5,
                     allow_private=False)
    assert data == PNG
    assert network.lookups == ["photos.test"]  # resolved once, and that answer was used
    assert public.seen[0].host == f"photos.test:{public.port}"


def test_a_redirect_hop_is_connected_to_the_address_checked_for_it(network):
    with serve_site(image_site()) as internal:
        site = image_site()
        site.pages["/go"] = (302, {"Location": f"http://hop.test:{internal.port}/room.png"}, b"")
        with serve_site(site) as public:
            network.resolve("start.test", [PUBLIC])
            network.resolve("hop.test", [PUBLIC], ["127.0.0.1"])
            network.route(PUBLIC, public.port)
            data = fetch(f"http://start.test:{public.port}/go", LIMITS, timeout=5,
                         allow_private=False)
    assert data == PNG
    assert internal.seen == []
    assert [seen.path for seen in public.seen] == ["/go", "/room.png"]


def test_a_redirect_to_a_private_name_is_refused(network):
    with serve_site(image_site()) as internal:
        site = Site({"/go": (302, {"Location": f"http://hop.test:{internal.port}/room.png"}, b"")})
        with serve_site(site) as public:
            network.resolve("start.test", [PUBLIC])
            network.resolve("hop.test", ["127.0.0.1"])
            network.route(PUBLIC, public.port)
            with pytest.raises(UrlRefused, match="127.0.0.1"):
                fetch(f"http://start.test:{public.port}/go", LIMITS, timeout=5,
                      allow_private=False)
    assert internal.seen == []


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    """A server context for photos.test, and the CA bundle that trusts it."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("photos.test").configure_cert(server)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return server, str(bundle)


def test_https_connects_to_the_checked_address_with_sni_and_certificate_on_the_name(network, tls):
    server, bundle = tls
    with serve_site(image_site(), tls=server) as public:
        network.resolve("photos.test", [PUBLIC], ["127.0.0.1"])
        network.route(PUBLIC, public.port)
        data = fetch(f"https://photos.test:{public.port}/room.png", LIMITS, timeout=5,
                     allow_private=False, ca_file=bundle)
    assert data == PNG
    assert network.connections == [(PUBLIC, public.port)]


def test_https_refuses_a_certificate_for_another_name(network, tls):
    server, bundle = tls
    with serve_site(image_site(), tls=server) as public:
        network.resolve("other.test", [PUBLIC])
        network.route(PUBLIC, public.port)
        with pytest.raises(FetchFailed, match="(?i)certificate"):
            fetch(f"https://other.test:{public.port}/room.png", LIMITS, timeout=5,
                  allow_private=False, ca_file=bundle)


def test_proxy_variables_do_not_carry_fetches(network, monkeypatch):
    with serve_site(image_site()) as proxy, serve_site(image_site()) as public:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{proxy.port}")
        network.resolve("photos.test", [PUBLIC])
        network.route(PUBLIC, public.port)
        assert fetch(f"http://photos.test:{public.port}/room.png", LIMITS, timeout=5,
                     allow_private=False) == PNG
    assert proxy.seen == []


def test_a_dripping_server_is_cut_off_at_the_total_deadline(network):
    site = Site({"/room.png": (200, {"Content-Type": "image/png"}, PNG)}, drip=0.2)
    with serve_site(site) as public:
        network.resolve("slow.test", [PUBLIC])
        network.route(PUBLIC, public.port)
        started = time.monotonic()
        with pytest.raises(FetchFailed, match="longer than 1 s"):
            fetch(f"http://slow.test:{public.port}/room.png", LIMITS, timeout=1,
                  allow_private=False)
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("address", [
    "2002:7f00:1::1",           # 6to4 of 127.0.0.1
    "2002:0a00:0001::1",        # 6to4 of 10.0.0.1
    "2002:a9fe:a9fe::1",        # 6to4 of 169.254.169.254
    "64:ff9b::7f00:1",          # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",       # NAT64 of the metadata address
    "::ffff:10.1.2.3",          # IPv4-mapped
    "::127.0.0.1",              # IPv4-compatible
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
])
def test_ipv6_forms_carrying_a_private_ipv4_address_are_refused(network, address):
    import ipaddress

    assert is_private(ipaddress.ip_address(address))
    network.resolve("sneaky.test", [address])
    with pytest.raises(UrlRefused):
        check_url("http://sneaky.test/a.png", allow_private=False)


def test_a_6to4_address_of_a_public_ipv4_address_is_accepted(network):
    network.resolve("v6.test", ["2002:0808:0808::1"])
    assert check_url("http://v6.test/a.png", allow_private=False) == "v6.test"


@pytest.mark.parametrize("url", [
    "http://[::1/x", "http://exa\tmple.com/a.png", "http://example.com/a\n.png",
    "http://example.com:99999/", "http://" + "a" * 70 + ".com/x.png", "http://a..b/x.png",
    "http://\ud800.com/", "http://example.com/" + "a" * 3000,
])
def test_malformed_urls_are_refused_before_any_lookup(network, url):
    with pytest.raises(UrlRefused):
        check_url(url, allow_private=False)
    assert network.lookups == []
