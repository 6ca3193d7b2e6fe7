"""Where a process stands in its engine's warm-up, for its probes.

A process that runs jobs warms its engine up first (weights loaded, kernels compiled: minutes on a
GPU). Meanwhile it is alive (`/healthz` answers) but not ready (`/readyz` says 503 and what it is
warming), so an orchestrator neither kills it nor sends it work. A failed warm-up leaves the
process unable to serve: it then reports itself unhealthy too, so that it is restarted, as it
would have been had the failure ended the process.

Standard library only: every layer may read it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class WarmupState(StrEnum):
    pending = "pending"
    warming = "warming"
    ready = "ready"
    failed = "failed"


@dataclass(frozen=True)
class WarmupReport:
    state: WarmupState
    engine: str | None
    tasks: tuple[str, ...]
    seconds: float | None
    error: str | None

    @property
    def ready(self) -> bool:
        return self.state == WarmupState.ready

    @property
    def alive(self) -> bool:
        return self.state != WarmupState.failed

    def describe(self) -> str:
        what = f"the {self.engine} engine" if self.engine else "the engine"
        if self.tasks:
            what += f" ({', '.join(self.tasks)})"
        if self.state == WarmupState.failed:
            return f"warming up {what} failed: {self.error}"
        if self.state == WarmupState.ready:
            return f"{what} is warm"
        return f"warming up {what}"

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state.value, "engine": self.engine, "tasks": list(self.tasks),
                "seconds": None if self.seconds is None else round(self.seconds, 1),
                "error": self.error}


class Warmup:
    """One process's warm-up: `run` it (in any thread), `report()` from any other."""

    def __init__(self, engine: str | None = None, tasks: Sequence[str] = ()) -> None:
        self._lock = threading.Lock()
        self._engine = engine
        self._tasks = tuple(tasks)
        self._state = WarmupState.pending
        self._started: float | None = None
        self._seconds: float | None = None
        self._error: str | None = None

    @classmethod
    def not_needed(cls) -> Warmup:
        """For a process that runs no jobs (an API-only `serve --workers 0`): ready at once."""
        warmup = cls()
        warmup._state = WarmupState.ready
        warmup._seconds = 0.0
        return warmup

    @classmethod
    def of(cls, engine: object) -> Warmup:
        """For this engine: its name and, where it has them, the tasks it warms up."""
        tasks = getattr(engine, "warmup_tasks", None) or ()
        return cls(str(getattr(engine, "name", type(engine).__name__)), [str(t) for t in tasks])

    def run(self, warm: Callable[[], object]) -> None:
        """Call `warm` and record how it went; its exception is recorded, then raised again."""
        with self._lock:
            self._state = WarmupState.warming
            self._started = time.monotonic()
        try:
            warm()
        except BaseException as problem:
            with self._lock:
                self._state = WarmupState.failed
                self._error = str(problem) or type(problem).__name__
                self._seconds = time.monotonic() - self._started
            raise
        with self._lock:
            self._state = WarmupState.ready
            self._seconds = time.monotonic() - self._started

    def report(self) -> WarmupReport:
        with self._lock:
            seconds = self._seconds
            if seconds is None and self._started is not None:
                seconds = time.monotonic() - self._started
            return WarmupReport(self._state, self._engine, self._tasks, seconds, self._error)
