"""Periodic upkeep: expired files are deleted (results after their TTL, and the inputs of jobs
that ended that long ago), jobs of dead workers are put back in the queue."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import delete, select, update

from roomrender.db.tables import files, jobs
from roomrender.jobs.models import JobStatus
from roomrender.services import Services
from roomrender.webhooks.outbox import prune as prune_webhooks

log = logging.getLogger("roomrender.janitor")


def delete_expired_files(services: Services, now: float | None = None, limit: int = 500) -> int:
    now = time.time() if now is None else now
    with services.db.connect() as connection:
        keys = connection.execute(
            select(files.c.key).where(files.c.expires_at.is_not(None), files.c.expires_at <= now)
            .limit(limit)
        ).scalars().all()
    for key in keys:
        services.storage.delete(key)
    if keys:
        with services.db.begin() as connection:
            connection.execute(delete(files).where(files.c.key.in_(keys)))
    return len(keys)


def expire_inputs_of_finished_jobs(services: Services, now: float | None = None) -> int:
    """Input images fetched or decoded for a job (kind "input") go with its results: once the job
    has ended more than the result TTL ago, they are marked expired. Kept forever when results are."""
    ttl = services.settings.result_ttl_seconds
    if ttl is None:
        return 0
    now = time.time() if now is None else now
    finished = select(jobs.c.id).where(
        jobs.c.status.in_([s.value for s in JobStatus if s.is_terminal]),
        jobs.c.finished_at <= now - ttl,
    )
    with services.db.begin() as connection:
        result = connection.execute(
            update(files)
            .where(files.c.kind == "input", files.c.expires_at.is_(None),
                   files.c.job_id.in_(finished.scalar_subquery()))
            .values(expires_at=now)
        )
    return result.rowcount or 0


def run_janitor(services: Services, stop: threading.Event, every_seconds: float = 30.0) -> None:
    while not stop.wait(every_seconds):
        try:
            services.queue.requeue_expired()
            expire_inputs_of_finished_jobs(services)
            removed = delete_expired_files(services)
            if removed:
                log.info("deleted %d expired files", removed)
            if services.settings.webhook_retention_seconds is not None:
                prune_webhooks(services.db, services.settings.webhook_retention_seconds)
        except Exception:  # noqa: BLE001 - upkeep must keep running
            log.exception("janitor pass failed")
