"""Whether a queued job waits for its turn or for a worker that is not there.

No table records workers; the jobs table shows them at work: a job running on a live lease (its
worker heartbeats), or one a worker ended lately. An idle worker is woken as a job is queued and
takes it at once, so a job queued longer than `after_seconds` while no worker showed itself in
that time waits for a worker to start, and its ETA would be a guess: it is told so instead.
"""

from __future__ import annotations

import threading
import time

from roomrender.jobs.queue import JobQueue

# The answer is shared by every job presented within this long (presenting is the poll path),
# or half of `after_seconds` when that is shorter.
CACHE_SECONDS = 2.0


class WorkerPresence:
    def __init__(self, queue: JobQueue, after_seconds: float) -> None:
        self.queue = queue
        self.after_seconds = after_seconds
        self._seen = True
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def message(self) -> str:
        return (f"a worker: none has taken a job in the last {self.after_seconds:g} s; start one with "
                "`roomrender worker` (or `roomrender serve` with --workers 1 or more)")

    def waiting_for(self, queued_at: float, now: float | None = None) -> str | None:
        """What a job queued at `queued_at` waits for besides its turn (None: only its turn)."""
        now = time.time() if now is None else now
        if now - queued_at < self.after_seconds or self._workers_seen(now):
            return None
        return self.message()

    def shortage(self) -> str | None:
        """The same, for the job that has waited longest (None: none waits for a worker)."""
        oldest = self.queue.oldest_queued_at()
        return None if oldest is None else self.waiting_for(oldest)

    def _workers_seen(self, now: float) -> bool:
        with self._lock:
            if now - self._checked_at >= min(CACHE_SECONDS, self.after_seconds / 2):
                self._seen = self.queue.worker_seen_since(now - self.after_seconds, now)
                self._checked_at = now
            return self._seen
