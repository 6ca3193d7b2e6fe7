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
    def __init__(self, total: int, per_key: int, *, wait_seconds: float = 1.0) -> None:
        self.per_key = max(1, per_key)
        self.wait_seconds = wait_seconds
        self._total = threading.BoundedSemaphore(max(1, total))
        self._by_key: dict[str, int] = {}
        self._lock = threading.Lock()

    def in_flight(self, owner_id: str) -> int:
        with self._lock:
            return self._by_key.get(owner_id, 0)

    @contextmanager
    def slot(self, owner_id: str) -> Iterator[None]:
        with self._lock:
            if self._by_key.get(owner_id, 0) >= self.per_key:
                raise RateLimited(
                    f"this key already has {self.per_key} image fetches in flight; retry when "
                    "one has finished, or upload the image first", code="too_many_fetches",
                    retry_after=1.0)
            self._by_key[owner_id] = self._by_key.get(owner_id, 0) + 1
        try:
            if not self._total.acquire(timeout=self.wait_seconds):
                raise RateLimited("the server is busy fetching images; retry in a moment",
                                  code="too_many_fetches", retry_after=2.0)
            try:
                yield
            finally:
                self._total.release()
        finally:
            with self._lock:
                left = self._by_key[owner_id] - 1
                if left:
                    self._by_key[owner_id] = left
                else:
                    del self._by_key[owner_id]

    def run(self, owner_id: str, function: Callable[[], T]) -> T:
        with self.slot(owner_id):
            return function()
