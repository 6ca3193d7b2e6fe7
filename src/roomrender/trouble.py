"""A loop's trouble (the database or the storage unavailable, say): it waits longer after each
failure in a row, and logs once when trouble starts (or changes), once when it ends, instead of a
traceback every poll."""

from __future__ import annotations

import logging
import threading

from roomrender.canonical.errors import Unavailable


class Trouble:
    """Failures in a row of one loop; `delay` grows with them up to `max_seconds`."""

    def __init__(self, name: str, *, base_seconds: float, max_seconds: float = 10.0,
                 logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("roomrender")
        self.name = name
        self.base_seconds = max(base_seconds, 0.05)
        self.max_seconds = max_seconds
        self.failures = 0
        self._kind: str | None = None
        self._lock = threading.Lock()

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, problem: BaseException) -> None:
        kind = f"{type(problem).__name__}: {getattr(problem, 'code', '')}"
        with self._lock:
            self.failures += 1
            if kind == self._kind:
                return
            self._kind = kind
        if isinstance(problem, Unavailable):
            self.log.warning("%s: %s; retrying, less often, until it passes", self.name, problem)
        else:
            self.log.error("%s: %s; retrying, less often, until it passes", self.name, problem,
                           exc_info=problem)

    def cleared(self) -> None:
        with self._lock:
            failures, self.failures, self._kind = self.failures, 0, None
        if failures:
            self.log.warning("%s: working again after %d failed tries", self.name, failures)

    def delay(self) -> float:
        return float(min(self.max_seconds, self.base_seconds * 2.0 ** min(self.failures, 16)))
