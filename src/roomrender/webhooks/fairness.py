"""Fair webhook slots across keys: one tenant's receivers cannot hold everyone's deliveries.

A dispatcher's slots are shared by the keys (owners) with due messages:

- a key has at most `per_key` attempts in flight at once;
- a key whose receivers keep timing out (`SLOW_AFTER` timeouts in a row) is *slow*: one attempt
  in flight at a time, each with the short deadline `slow_timeout`, and the slow keys together
  hold at most half the slots; its first answer in time (any status, or a refused connection)
  makes it an ordinary key again;
- due messages are handed out key by key (every key's first message before anyone's second).

So a good receiver always finds a free slot within a slow key's short deadline, whatever other
keys' receivers do. The state is this process's own (each dispatcher learns for itself).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection, Sequence

# Timeouts in a row that make a key slow.
SLOW_AFTER = 2


class KeyShares:
    def __init__(self, concurrency: int, per_key: int, timeout: float,
                 slow_timeout: float) -> None:
        self.concurrency = max(1, concurrency)
        self.per_key = max(1, min(per_key, self.concurrency))
        self.timeout = timeout
        self.slow_timeout = min(timeout, slow_timeout)
        self.slow_share = max(1, self.concurrency // 2)
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()
        self._timeouts: Counter[str] = Counter()

    # -- what the dispatcher asks ---------------------------------------------------------

    def is_slow(self, owner: str) -> bool:
        return self._timeouts[owner] >= SLOW_AFTER

    def timeout_for(self, owner: str) -> float:
        """The deadline of an attempt for this key's receiver."""
        with self._lock:
            return self.slow_timeout if self.is_slow(owner) else self.timeout

    @property
    def most_per_owner(self) -> int:
        return self.per_key

    def busy_owners(self) -> Collection[str]:
        """Keys that may start no attempt now."""
        with self._lock:
            slow_full = self._slow_in_flight() >= self.slow_share
            return {owner for owner, count in self._in_flight.items()
                    if count >= self._cap(owner) or (slow_full and self.is_slow(owner))}

    def pick(self, candidates: Sequence[tuple[str, str]], limit: int) -> list[str]:
        """The ids of `(id, owner)` candidates (in the order to serve them) that may start now,
        at most `limit`. Only those then leased count as in flight (`started`)."""
        picked: list[str] = []
        with self._lock:
            in_flight = Counter(self._in_flight)
            slow_room = self.slow_share - self._slow_in_flight()
            for message_id, owner in candidates:
                if len(picked) >= limit:
                    break
                if in_flight[owner] >= self._cap(owner):
                    continue
                if self.is_slow(owner):
                    if slow_room <= 0:
                        continue
                    slow_room -= 1
                in_flight[owner] += 1
                picked.append(message_id)
        return picked

    def started(self, owner: str) -> None:
        with self._lock:
            self._in_flight[owner] += 1

    def finished(self, owner: str, *, timed_out: bool) -> None:
        with self._lock:
            self._drop(owner)
            if timed_out:
                self._timeouts[owner] += 1
            else:
                self._timeouts.pop(owner, None)

    # -- inside the lock ------------------------------------------------------------------

    def _cap(self, owner: str) -> int:
        return 1 if self.is_slow(owner) else self.per_key

    def _slow_in_flight(self) -> int:
        return sum(count for owner, count in self._in_flight.items() if self.is_slow(owner))

    def _drop(self, owner: str) -> None:
        self._in_flight[owner] -= 1
        if self._in_flight[owner] <= 0:
            del self._in_flight[owner]
