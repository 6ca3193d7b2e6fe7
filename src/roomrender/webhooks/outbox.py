"""The outbox: the only module that reads and writes the webhook tables.

`OutboxHook` is a `JobQueue` hook, so an event row commits or rolls back with the job's state
change: a job can never end without its webhook queued, nor a webhook leave for a change that was
undone. Dispatchers lease due rows (`lease_due`) and record each attempt (`record`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)

from roomrender.canonical.models import Job
from roomrender.db.tables import webhook_attempts, webhook_messages
from roomrender.events.feed import Change, ChangeFeed, Doorbell, feed_for
from roomrender.webhooks.bodies import WebhookBodies

log = logging.getLogger("roomrender.webhooks")

# `job.progress` is sent at most this often per job.
PROGRESS_INTERVAL_SECONDS = 1.0
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# On the change feed: a message was added (dispatchers wake up).
OUTBOX_TOPIC = "outbox"


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class LeasedMessage:
    id: str
    url: str
    payload: str
    attempts: int
    owner_id: str


class Shares(Protocol):
    """How a dispatcher shares its slots across keys (`webhooks.fairness.KeyShares`)."""

    @property
    def most_per_owner(self) -> int: ...
    def busy_owners(self) -> Collection[str]: ...
    def pick(self, candidates: Sequence[tuple[str, str]], limit: int) -> list[str]: ...


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt, and the message's state after it."""

    message_id: str
    token: str
    attempt: int
    started_at: float
    duration_ms: int
    outcome: str
    status_code: int | None
    error: str | None
    status: str
    next_attempt_at: float | None
    last_error: str | None


@dataclass(frozen=True)
class Backlog:
    """Messages not yet delivered nor given up on."""

    due: int            # to be sent now (or their lease ran out)
    in_flight: int      # leased to a dispatcher, being sent
    retrying: int       # waiting for their next attempt
    oldest_due_seconds: float  # how late the most overdue message is (0: none due)


class Outbox:
    def __init__(self, db: Engine, feed: ChangeFeed | None = None) -> None:
        self.db = db
        self._locks_rows = db.dialect.name == "postgresql"
        self.feed = feed or feed_for(db)

    def add(self, connection: Connection, *, job_id: str, owner_id: str, event: str, url: str,
            payload: str, first_attempt_at: float) -> None:
        now = time.time()
        connection.execute(insert(webhook_messages).values(
            id=new_message_id(), job_id=job_id, owner_id=owner_id, event=event, url=url,
            payload=payload, status=PENDING, attempts=0, next_attempt_at=first_attempt_at,
            created_at=now, updated_at=now,
        ))
        self.feed.stage(Change(OUTBOX_TOPIC))

    def doorbell(self) -> Doorbell:
        """Rung when a message is added (here or in another process): an idle dispatcher waits
        on it, and on `next_attempt_at`, instead of polling."""
        return self.feed.doorbell(OUTBOX_TOPIC)

    def next_attempt_at(self) -> float | None:
        """When the earliest pending message is due (a lease's end included), if any."""
        m = webhook_messages.c
        with self.db.connect() as connection:
            due = connection.execute(
                select(func.min(m.next_attempt_at)).where(m.status == PENDING)).scalar()
        return None if due is None else float(due)

    @staticmethod
    def sent_progress_recently(connection: Connection, job_id: str, now: float) -> bool:
        # Read from the table rather than memory so several workers share one throttle.
        last = connection.execute(
            select(func.max(webhook_messages.c.created_at)).where(
                webhook_messages.c.job_id == job_id, webhook_messages.c.event == "job.progress")
        ).scalar()
        return last is not None and now - last < PROGRESS_INTERVAL_SECONDS

    def lease_due(self, limit: int, lease_seconds: float, now: float | None = None,
                  shares: Shares | None = None) -> tuple[str, list[LeasedMessage]]:
        """Lease up to `limit` due messages under a fresh claim token. With `shares`, the
        messages are offered key by key (each key's oldest first) and `shares` picks those that
        may start (`webhooks.fairness`)."""
        now = time.time() if now is None else now
        m = webhook_messages.c
        due = and_(m.status == PENDING, m.next_attempt_at <= now)
        token = uuid.uuid4().hex
        with self.db.begin() as connection:
            if shares is None:
                query = select(m.id).where(due).order_by(m.next_attempt_at).limit(limit)
            else:
                picked = self._fair_ids(connection, due, limit, shares)
                if not picked:
                    return token, []
                query = select(m.id).where(m.id.in_(picked), due)
            if self._locks_rows:
                query = query.with_for_update(skip_locked=True)
            ids = connection.execute(query).scalars().all()
            if not ids:
                return token, []
            # Guarded by `due` again: on SQLite another process may have claimed meanwhile.
            connection.execute(update(webhook_messages).where(m.id.in_(ids), due).values(
                claim_token=token, next_attempt_at=now + lease_seconds, updated_at=now))
            rows = connection.execute(select(m.id, m.url, m.payload, m.attempts, m.owner_id)
                                      .where(m.claim_token == token)).all()
        return token, [LeasedMessage(row.id, row.url, row.payload, row.attempts, row.owner_id)
                       for row in rows]

    @staticmethod
    def _fair_ids(connection: Connection, due: Any, limit: int, shares: Shares) -> list[str]:
        """Due messages' ids, each key's first ones before anyone's next, as `shares` picks."""
        m = webhook_messages.c
        where = [due]
        busy = list(shares.busy_owners())
        if busy:
            where.append(m.owner_id.not_in(busy))
        rank = func.row_number().over(partition_by=m.owner_id,
                                      order_by=(m.next_attempt_at, m.id)).label("rank")
        ranked = select(m.id, m.owner_id, m.next_attempt_at, rank).where(*where).subquery()
        candidates = connection.execute(
            select(ranked.c.id, ranked.c.owner_id)
            .where(ranked.c.rank <= shares.most_per_owner)
            .order_by(ranked.c.rank, ranked.c.next_attempt_at)
            .limit(limit * shares.most_per_owner)).all()
        return shares.pick([(row.id, row.owner_id) for row in candidates], limit)

    def backlog(self, now: float | None = None) -> Backlog:
        now = time.time() if now is None else now
        m = webhook_messages.c
        later = m.next_attempt_at > now
        with self.db.connect() as connection:
            row = connection.execute(
                select(
                    func.coalesce(func.sum(case((m.next_attempt_at <= now, 1), else_=0)), 0),
                    func.coalesce(func.sum(case((and_(later, m.claim_token.is_not(None)), 1),
                                                else_=0)), 0),
                    func.coalesce(func.sum(case((and_(later, m.claim_token.is_(None)), 1),
                                                else_=0)), 0),
                    func.min(m.next_attempt_at),
                ).where(m.status == PENDING)
            ).one()
        earliest = row[3]
        overdue = max(0.0, now - earliest) if earliest is not None else 0.0
        return Backlog(int(row[0]), int(row[1]), int(row[2]), overdue)

    def record(self, records: Sequence[AttemptRecord], now: float | None = None) -> None:
        """Write the attempts and the messages' new states, each only by the claim that made it
        (a lease may have passed meanwhile)."""
        if not records:
            return
        now = time.time() if now is None else now
        m = webhook_messages.c
        guarded = (update(webhook_messages)
                   .where(m.id == bindparam("b_id"), m.claim_token == bindparam("b_token"))
                   .values(claim_token=None, updated_at=now))
        with self.db.begin() as connection:
            connection.execute(insert(webhook_attempts), [
                {"message_id": r.message_id, "attempt": r.attempt, "started_at": r.started_at,
                 "duration_ms": r.duration_ms, "status_code": r.status_code, "error": r.error,
                 "outcome": r.outcome}
                for r in records
            ])
            connection.execute(guarded, [
                {"b_id": r.message_id, "b_token": r.token, "status": r.status,
                 "next_attempt_at": r.next_attempt_at, "attempts": r.attempt,
                 "last_status_code": r.status_code, "last_error": r.last_error,
                 "delivered_at": now if r.status == DELIVERED else None}
                for r in records
            ])

    def history(self, job_id: str) -> list[dict[str, Any]]:
        """The job's webhook messages, oldest first, each with its attempts."""
        m, a = webhook_messages.c, webhook_attempts.c
        with self.db.connect() as connection:
            messages = connection.execute(
                select(webhook_messages).where(m.job_id == job_id).order_by(m.created_at, m.id)
            ).all()
            attempts = connection.execute(
                select(webhook_attempts).where(a.message_id.in_([row.id for row in messages]))
                .order_by(a.message_id, a.attempt, a.id)).all()
        by_message: dict[str, list[Any]] = {}
        for attempt in attempts:
            by_message.setdefault(attempt.message_id, []).append(attempt)
        return [
            {"message": row._mapping,
             "attempts": [item._mapping for item in by_message.get(row.id, [])]}
            for row in messages
        ]

    def prune(self, older_than_seconds: float, now: float | None = None,
              limit: int = 1000) -> int:
        """Forget delivered and failed messages (and their attempts) older than this."""
        cutoff = (time.time() if now is None else now) - older_than_seconds
        m = webhook_messages.c
        with self.db.begin() as connection:
            ids = connection.execute(
                select(m.id).where(m.status.in_([DELIVERED, FAILED]), m.updated_at < cutoff)
                .limit(limit)
            ).scalars().all()
            if ids:
                connection.execute(
                    delete(webhook_attempts).where(webhook_attempts.c.message_id.in_(ids)))
                connection.execute(delete(webhook_messages).where(m.id.in_(ids)))
        return len(ids)


class ChangedJob(Protocol):
    """What the hook reads of a changed job (a `jobs.records.JobRecord`, which this layer does
    not import)."""

    @property
    def id(self) -> str: ...
    @property
    def owner_id(self) -> str: ...
    @property
    def dialect(self) -> str: ...
    @property
    def request(self) -> Mapping[str, Any]: ...


Changed = TypeVar("Changed", bound=ChangedJob)


class OutboxHook(Generic[Changed]):
    """Writes a job's webhook event, in its dialect's body, in the transaction of the change."""

    def __init__(self, outbox: Outbox, bodies: WebhookBodies, present: Callable[[Changed], Job],
                 first_delay: float = 0.0) -> None:
        self.outbox = outbox
        self.bodies = bodies
        self.present = present
        self.first_delay = first_delay

    def __call__(self, connection: Connection, changed: Changed, event: str) -> None:
        request = changed.request or {}
        url = request.get("webhook")
        if not url or event not in self.bodies.wanted_events(changed.dialect,
                                                             request.get("webhook_events")):
            return
        now = time.time()
        if event == "job.progress" and self.outbox.sent_progress_recently(connection, changed.id,
                                                                          now):
            return
        job = self.present(changed)
        try:
            body = self.bodies.render(event, job)
        except Exception:
            log.exception("the %s body of job %s failed; sending the native body",
                          changed.dialect, changed.id)
            body = self.bodies.render_native(event, job)
        self.outbox.add(connection, job_id=changed.id, owner_id=changed.owner_id, event=event,
                        url=url, payload=body, first_attempt_at=now + self.first_delay)
