"""The outbox: a job transition writes its webhook event in its own transaction.

`OutboxHook` is a `JobQueue` hook, so the event row commits or rolls back with the state change:
a job can never end without its webhook queued, nor a webhook leave for a change that was undone.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, func, insert, select

from roomrender.db.tables import webhook_attempts, webhook_messages
from roomrender.webhooks.bodies import native_payload, payload, wanted_events

if TYPE_CHECKING:
    from roomrender.services import Services

log = logging.getLogger("roomrender.webhooks")

# `job.progress` is sent at most this often per job.
PROGRESS_INTERVAL_SECONDS = 1.0
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class OutboxHook:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.first_delay = (services.settings.webhook_retry_schedule or [0.0])[0]

    def __call__(self, connection: Connection, row: Any, event: str) -> None:
        request = row.request or {}
        url = request.get("webhook")
        if not url or event not in wanted_events(row.dialect, request.get("webhook_events")):
            return
        now = time.time()
        if event == "job.progress" and self._sent_progress_recently(connection, row.id, now):
            return
        job = self.services.jobs.present(row)
        try:
            body = payload(event, job, self.services)
        except Exception:  # noqa: BLE001 - a dialect's renderer must never undo the transition
            log.exception("the %s body of job %s failed; sending the native body", row.dialect, row.id)
            body = native_payload(event, job, self.services)
        connection.execute(insert(webhook_messages).values(
            id=new_message_id(), job_id=row.id, owner_id=row.owner_id, event=event, url=url,
            payload=body, status=PENDING, attempts=0, next_attempt_at=now + self.first_delay,
            created_at=now, updated_at=now,
        ))

    @staticmethod
    def _sent_progress_recently(connection: Connection, job_id: str, now: float) -> bool:
        # Read from the table rather than memory so several workers share one throttle.
        last = connection.execute(
            select(func.max(webhook_messages.c.created_at)).where(
                webhook_messages.c.job_id == job_id, webhook_messages.c.event == "job.progress")
        ).scalar()
        return last is not None and now - last < PROGRESS_INTERVAL_SECONDS


def history(db: Engine, job_id: str) -> list[dict[str, Any]]:
    """The job's webhook messages, oldest first, each with its attempts."""
    m, a = webhook_messages.c, webhook_attempts.c
    with db.connect() as connection:
        messages = connection.execute(
            select(webhook_messages).where(m.job_id == job_id).order_by(m.created_at, m.id)).all()
        attempts = connection.execute(
            select(webhook_attempts).where(a.message_id.in_([row.id for row in messages]))
            .order_by(a.message_id, a.attempt, a.id)).all()
    by_message: dict[str, list[Any]] = {}
    for attempt in attempts:
        by_message.setdefault(attempt.message_id, []).append(attempt)
    return [
        {"message": row._mapping, "attempts": [item._mapping for item in by_message.get(row.id, [])]}
        for row in messages
    ]


def prune(db: Engine, older_than_seconds: float, now: float | None = None, limit: int = 1000) -> int:
    """Forget delivered and failed messages (and their attempts) older than this."""
    cutoff = (time.time() if now is None else now) - older_than_seconds
    m = webhook_messages.c
    with db.begin() as connection:
        ids = connection.execute(
            select(m.id).where(m.status.in_([DELIVERED, FAILED]), m.updated_at < cutoff).limit(limit)
        ).scalars().all()
        if ids:
            connection.execute(delete(webhook_attempts).where(webhook_attempts.c.message_id.in_(ids)))
            connection.execute(delete(webhook_messages).where(m.id.in_(ids)))
    return len(ids)
