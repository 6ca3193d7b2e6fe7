"""How many image fetches (and webhook host look-ups) run at once: on this process, and for one
key.

A fetch holds a thread for up to the fetch timeout. Without a bound, one key sending slow URLs
could hold every thread of the API; past its share a key is told to retry (429), and past the
process's share a request waits at most a moment for a slot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from roomrender.canonical.errors import RateLimited

T = TypeVar("T")


class FetchSlots:
    """Fair across keys: a key's second and later fetches in flight may not take the last half of
    the free slots, which stay for the first fetch of each key, so a few keys filling the
    process with slow URLs cannot starve another key's fetch (up to `total // 2` keys fetching
    at once each get one)."""

    def __init__(self, total: int, per_key: int, *, wait_seconds: float = 1.0) -> None:
        self.per_key = max(1, per_key)
        self.wait_seconds = wait_seconds
        self.total = max(1, total)
        self.reserve = self.total // 2
        self._free = self.total
        self._by_key: dict[str, int] = {}
        self._changed = threading.Condition()

    def in_flight(self, owner_id: str) -> int:
        with self._changed:
            return self._by_key.get(owner_id, 0)

    @contextmanager
    def slot(self, owner_id: str) -> Iterator[None]:
        with self._changed:
            mine = self._by_key.get(owner_id, 0)
            if mine >= self.per_key:
                raise RateLimited(
                    f"this key already has {self.per_key} image fetches in flight; retry when "
                    "one has finished, or upload the image first", code="too_many_fetches",
                    retry_after=1.0)
            # The reserve is for keys with no fetch in flight.
            floor = self.reserve if mine else 0
            if not self._changed.wait_for(lambda: self._free > floor, timeout=self.wait_seconds):
                raise RateLimited("the server is busy fetching images; retry in a moment",
                                  code="too_many_fetches", retry_after=2.0)
            self._free -= 1
            self._by_key[owner_id] = mine + 1
        try:
            yield
        finally:
            with self._changed:
                self._free += 1
                left = self._by_key[owner_id] - 1
                if left:
                    self._by_key[owner_id] = left
                else:
                    del self._by_key[owner_id]
                self._changed.notify_all()

    def run(self, owner_id: str, function: Callable[[], T]) -> T:
        with self.slot(owner_id):
            return function()
