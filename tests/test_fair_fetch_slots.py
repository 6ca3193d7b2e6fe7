"""Fetch slots are shared fairly: keys that fill the process with slow URLs leave room for
another key's fetch, which starts at once instead of being refused."""

from __future__ import annotations

import threading

import pytest

from roomrender.accounts.fetch_slots import FetchSlots
from roomrender.canonical.errors import RateLimited


def test_seven_keys_with_slow_urls_do_not_starve_an_eighth():
    slots = FetchSlots(16, 4, wait_seconds=0.2)
    release = threading.Event()
    held: list[threading.Thread] = []
    refused: list[str] = []

    def slow_fetch(key: str) -> None:
        try:
            slots.run(key, release.wait)
        except RateLimited:
            refused.append(key)

    for key in (f"flooder-{n}" for n in range(7)):
        for _ in range(4):
            thread = threading.Thread(target=slow_fetch, args=(key,))
            thread.start()
            held.append(thread)
    try:
        threading.Event().wait(0.6)  # every flooder's try has a slot or was refused by now
        assert refused  # the flooders could not take every slot
        assert slots.run("patient", lambda: "fetched") == "fetched"
        assert slots.run("another", lambda: "fetched") == "fetched"
        # Each flooder still has its first fetch: nobody is locked out.
        assert all(slots.in_flight(f"flooder-{n}") >= 1 for n in range(7))
    finally:
        release.set()
        for thread in held:
            thread.join(5)
    assert slots.run("flooder-0", lambda: 1) == 1


def test_a_key_past_its_own_share_is_told_to_retry():
    slots = FetchSlots(16, 1, wait_seconds=0.1)
    with slots.slot("one"), pytest.raises(RateLimited):
        slots.run("one", lambda: None)
