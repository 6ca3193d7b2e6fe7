"""Periodic upkeep: expired files are deleted, jobs of dead workers are put back in the queue."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import delete, select

from roomrender.db.tables import files
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


def run_janitor(services: Services, stop: threading.Event, every_seconds: float = 30.0) -> None:
    while not stop.wait(every_seconds):
        try:
            services.queue.requeue_expired()
            removed = delete_expired_files(services)
            if removed:
                log.info("deleted %d expired files", removed)
            if services.settings.webhook_retention_seconds is not None:
                prune_webhooks(services.db, services.settings.webhook_retention_seconds)
        except Exception:  # noqa: BLE001 - upkeep must keep running
            log.exception("janitor pass failed")
