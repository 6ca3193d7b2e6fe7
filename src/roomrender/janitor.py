"""Periodic upkeep: expired files are deleted (results after their TTL, and the inputs of jobs
that ended that long ago), jobs of dead workers are put back in the queue, settled webhook events
are forgotten after their retention."""

from __future__ import annotations

import logging
import threading
import time

from roomrender.jobs.queue import JobQueue
from roomrender.storage.files import FileStore
from roomrender.webhooks.outbox import Outbox

log = logging.getLogger("roomrender.janitor")


class Janitor:
    def __init__(self, queue: JobQueue, files: FileStore, outbox: Outbox, *,
                 result_ttl_seconds: float | None,
                 webhook_retention_seconds: float | None) -> None:
        self.queue = queue
        self.files = files
        self.outbox = outbox
        self.result_ttl_seconds = result_ttl_seconds
        self.webhook_retention_seconds = webhook_retention_seconds

    def expire_inputs_of_finished_jobs(self, now: float | None = None) -> int:
        """Input images fetched or decoded for a job (kind "input") go with its results: once
        the job ended more than the result TTL ago, they expire. Kept forever when results are."""
        if self.result_ttl_seconds is None:
            return 0
        now = time.time() if now is None else now
        return self.files.expire_inputs_of(self.queue.ended_before(now - self.result_ttl_seconds),
                                           now)

    def run_once(self) -> None:
        self.queue.requeue_expired()
        self.expire_inputs_of_finished_jobs()
        removed = self.files.delete_expired()
        if removed:
            log.info("deleted %d expired files", removed)
        if self.webhook_retention_seconds is not None:
            self.outbox.prune(self.webhook_retention_seconds)

    def run(self, stop: threading.Event, every_seconds: float = 30.0) -> None:
        while not stop.wait(every_seconds):
            try:
                self.run_once()
            except Exception:
                log.exception("janitor pass failed")
