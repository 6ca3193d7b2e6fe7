"""The queue is the jobs table: claims with a lease, heartbeats, and every state transition.

Every transition is one guarded UPDATE (`WHERE status = ... AND claim_token = ...`), so two
processes can never both move the same job, on SQLite and PostgreSQL alike. On PostgreSQL the
candidate rows are also locked with FOR UPDATE SKIP LOCKED so concurrent claimers don't collide.
Every transition runs its hooks inside its transaction and is published on the process's change
feed (`roomrender.events`) once it commits, with the job's new row (`job_change`).

Rows leave this module as typed `JobRecord`s; JobService hands a new job in as a `NewJob`.
A worker claims only the jobs whose task it runs and whose request version it knows
(`request_version` at most its own): a job written by a newer API waits for a newer worker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)

from roomrender.accounts.credits import CreditLedger
from roomrender.accounts.limits import too_many_active_jobs
from roomrender.canonical.models import REQUEST_VERSION, JobStatus
from roomrender.db.tables import jobs
from roomrender.events.feed import Change, ChangeFeed, Doorbell, feed_for
from roomrender.jobs.records import JobRecord, NewJob
from roomrender.jobs.rows import FastQuery
from roomrender.storage.files import FileStore, output_keys

# Most urgent first: priority; within a priority, keys take turns (JobService.submit gives each
# job its turn); then first come, first served.
_URGENCY = (jobs.c.priority.desc(), jobs.c.turn, jobs.c.created_at, jobs.c.id)


# Built once: queue positions are read on every poll of a queued job.
_JOBS_AHEAD = select(func.count()).select_from(jobs).where(
    jobs.c.status == JobStatus.queued.value,
    jobs.c.engine == bindparam("engine"),
    or_(
        jobs.c.priority > bindparam("priority"),
        and_(jobs.c.priority == bindparam("priority"), jobs.c.turn < bindparam("turn")),
        and_(jobs.c.priority == bindparam("priority"), jobs.c.turn == bindparam("turn"),
             jobs.c.created_at < bindparam("created_at")),
    ),
)


_SAME_LANE = (jobs.c.engine == bindparam("engine"), jobs.c.priority == bindparam("priority"))
_QUEUE_FRONT = select(func.min(jobs.c.turn)).where(jobs.c.status == JobStatus.queued.value,
                                                   *_SAME_LANE)
_LAST_RUN_TURN = select(func.max(jobs.c.turn)).where(jobs.c.status == JobStatus.running.value,
                                                     *_SAME_LANE)
_OWN_LAST_TURN = select(func.max(jobs.c.turn)).where(
    jobs.c.owner_id == bindparam("owner_id"),
    jobs.c.status.in_([JobStatus.queued.value, JobStatus.running.value]), *_SAME_LANE)


# Job changes on the change feed: topic "job", key the job's id, data {"event", "row"}: the row's
# columns after the change, but for the request (large, never changes) and the claim token.
JOB_TOPIC = "job"
_NOT_CARRIED = frozenset({"request", "claim_token", "request_hash", "idempotency_key"})
# Events after which the job is queued: workers of its engine wake up.
ENTERS_QUEUE = frozenset({"job.queued", "job.requeued"})


def job_change(record: JobRecord, event: str) -> Change:
    return Change(JOB_TOPIC, record.id, {"event": event, "row": {
        name: value for name, value in record.columns().items() if name not in _NOT_CARRIED}})


class _NotCharged(Exception):
    """Rolls back an enqueue the key's credits do not cover."""


class JobHook(Protocol):
    """Called inside the transaction that changes a job, with the job's new record."""

    def __call__(self, connection: Connection, record: JobRecord, event: str, /) -> None: ...


@dataclass(frozen=True)
class Claim:
    token: str
    # The claimed jobs, in queue order.
    rows: list[JobRecord]


# Built once: the poll path is hot, and building a statement costs more than running it.
_JOB_OF_OWNER = select(jobs).where(jobs.c.id == bindparam("job_id"),
                                   jobs.c.owner_id == bindparam("owner_id"))
_ACTIVE = (JobStatus.queued.value, JobStatus.running.value)
_ENDED = (JobStatus.succeeded.value, JobStatus.failed.value, JobStatus.canceled.value)


def _eligible(engine: str, tasks: Sequence[str] | None, request_version: int) -> list[Any]:
    """Queued jobs a worker of `engine` may claim: of its `tasks` (any when None) and of a
    request version it knows."""
    eligible = [jobs.c.status == JobStatus.queued.value, jobs.c.engine == engine,
                jobs.c.request_version <= request_version]
    if tasks:
        eligible.append(jobs.c.task.in_(list(tasks)))
    return eligible


def pipeline_condition(pipelines: Sequence[str]) -> Any:
    """Jobs whose batch key is one of `pipelines` or starts with one of them followed by ":".

    Batch keys are colon-separated, most general field first (the preview engine's are
    `preview:<task>:<W>x<H>`), so `preview` matches every preview job and `preview:restyle` only
    its restyles, while `preview:re` matches nothing. Compared exactly (no LIKE: SQLite's is
    case-insensitive and `_` is a wildcard)."""
    return or_(*[
        or_(jobs.c.batch_key == name,
            func.substr(jobs.c.batch_key, 1, len(name) + 1) == name + ":")
        for name in pipelines
    ])


class JobQueue:
    """The only module that writes (and, but for the metrics' counts, reads) the jobs table."""

    def __init__(self, db: Engine, *, lease_seconds: float, ledger: CreditLedger,
                 files: FileStore, hooks: Sequence[JobHook] = (),
                 feed: ChangeFeed | None = None) -> None:
        self.db = db
        # Every transition is published on the process's change feed after it commits.
        self.feed = feed or feed_for(db)
        self.lease_seconds = lease_seconds
        self.ledger = ledger
        self.files = files
        self.hooks: list[JobHook] = list(hooks)
        self._locks_rows = db.dialect.name == "postgresql"
        self._last_reap = 0.0
        self._jobs_ahead = FastQuery(db, _JOBS_AHEAD)
        self._own_job = FastQuery(db, _JOB_OF_OWNER, json_columns=("request", "outputs"))

    def add_hook(self, hook: JobHook) -> None:
        self.hooks.append(hook)

    def emit(self, connection: Connection, job_ids: list[str], event: str) -> None:
        """Inside the transition's transaction (opened with `self.feed.transaction`): run the
        hooks, and stage the jobs' new rows on the change feed (published at commit)."""
        if not job_ids:
            return
        rows = connection.execute(select(jobs).where(jobs.c.id.in_(job_ids))).all()
        for row in rows:
            record = JobRecord.from_columns(row._mapping)
            for hook in self.hooks:
                hook(connection, record, event)
            self.feed.stage(job_change(record, event))

    def announce(self, changes: Sequence[Change]) -> None:
        """Changes that touch no row (a chat job's text as it forms, jobs/live_text.py): carried
        to other processes by PostgreSQL's NOTIFY; on SQLite, heard in this process only."""
        if not changes:
            return
        if not self._locks_rows:
            self.feed.publish(changes)
            return
        with self.feed.transaction(self.db):
            for change in changes:
                self.feed.stage(change)

    def queued_doorbell(self, engine: str) -> Doorbell:
        """Rung when a job of `engine` is queued (here or in another process): an idle worker
        waits on it instead of polling."""
        def enters_queue(change: Change) -> bool:
            data = change.data
            return data is None or (data["event"] in ENTERS_QUEUE
                                    and data["row"]["engine"] == engine)

        return self.feed.doorbell(JOB_TOPIC, enters_queue)

    # -- queuing --------------------------------------------------------------------------

    def enqueue(self, new: NewJob, input_keys: Sequence[str], *,
                max_active: int | None = None) -> bool:
        """Charge the job's cost, queue it (its turn among its key's jobs) and make its stored
        inputs its own, in one transaction. False, and nothing written, when the key's credits
        do not cover the cost; RateLimited when the key has `max_active` queued and running jobs
        already. An IntegrityError means its idempotency key was taken meanwhile."""
        try:
            with self.feed.transaction(self.db) as connection:
                # The charge locks the key's row first, so the count below is the key's alone
                # until this transaction ends, whichever process enqueues.
                if not self.ledger.charge(connection, new.owner_id, new.cost):
                    raise _NotCharged
                if max_active is not None and self._active(connection, new.owner_id) >= max_active:
                    raise too_many_active_jobs(max_active)
                turn = self.next_turn(connection, new.owner_id, new.engine, new.request.priority)
                connection.execute(insert(jobs).values(**new.columns(time.time(), turn)))
                self.files.attach_to_job(connection, input_keys, new.id)
                self.emit(connection, [new.id], "job.queued")
        except _NotCharged:
            return False
        return True

    # -- claiming -------------------------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        engine: str,
        *,
        tasks: Sequence[str] | None = None,
        pipelines: Sequence[str] | None = None,
        request_version: int = REQUEST_VERSION,
        max_images: int = 8,
        now: float | None = None,
    ) -> Claim | None:
        """Claim the most urgent queued job and the compatible ones behind it, up to `max_images`.

        Only jobs of `tasks` (all when None) and of a request version up to `request_version`
        (the worker's: the versions it knows) are claimed; `pipelines` limits the claim to jobs
        whose batch key matches one of them (see `pipeline_condition`)."""
        now = time.time() if now is None else now
        if now - self._last_reap > 1.0:
            self.requeue_expired(now)
            self._last_reap = now
        eligible = _eligible(engine, tasks, request_version)
        if pipelines:
            eligible.append(pipeline_condition(pipelines))
        with self.feed.transaction(self.db) as connection:
            first_query = select(jobs.c.batch_key).where(*eligible).order_by(*_URGENCY).limit(1)
            if self._locks_rows:
                first_query = first_query.with_for_update(skip_locked=True)
            first = connection.execute(first_query).first()
            if first is None:
                return None
            # The first job always runs, even when it alone asks for more than a batch holds.
            return self._take(connection, worker_id, uuid.uuid4().hex, first.batch_key,
                              eligible, max_images, now, oversized_first=True)

    def claim_more(self, worker_id: str, claim: Claim, max_images: int, *,
                   tasks: Sequence[str] | None = None,
                   request_version: int = REQUEST_VERSION) -> Claim:
        """Add queued jobs of the claim's batch key to it, up to `max_images` more images (of
        `tasks` and `request_version` at most, as `claim`)."""
        if max_images <= 0:
            return claim
        first = claim.rows[0]
        eligible = _eligible(first.engine, tasks, request_version)
        with self.feed.transaction(self.db) as connection:
            more = self._take(connection, worker_id, claim.token, first.batch_key, eligible,
                              max_images, time.time())
        return Claim(claim.token, [*claim.rows, *more.rows]) if more else claim

    def _take(self, connection: Connection, worker_id: str, token: str, batch_key: str,
              eligible: list[Any], max_images: int, now: float,
              oversized_first: bool = False) -> Claim | None:
        batch_query = (
            select(jobs.c.id, jobs.c.cost)
            .where(*eligible, jobs.c.batch_key == batch_key)
            .order_by(*_URGENCY)
            .limit(max_images)
        )
        if self._locks_rows:
            batch_query = batch_query.with_for_update(skip_locked=True)
        chosen: list[str] = []
        images = 0
        for row in connection.execute(batch_query):
            if images + row.cost > max_images and (chosen or not oversized_first):
                continue  # a smaller job behind may still fit; this one heads the next claim
            chosen.append(row.id)
            images += row.cost
        if not chosen:
            return None
        updated = connection.execute(
            update(jobs)
            .where(jobs.c.id.in_(chosen), jobs.c.status == JobStatus.queued.value)
            .values(
                status=JobStatus.running.value,
                claim_token=token,
                lease_owner=worker_id,
                lease_expires_at=now + self.lease_seconds,
                attempts=jobs.c.attempts + 1,
                started_at=func.coalesce(jobs.c.started_at, now),
                progress=0.0,
                updated_at=now,
            )
            .returning(*jobs.c)
        ).all()
        if not updated:
            return None
        position = {job_id: index for index, job_id in enumerate(chosen)}  # queue order
        records = sorted((JobRecord.from_columns(row._mapping) for row in updated),
                         key=lambda record: position[record.id])
        self.emit(connection, [record.id for record in records], "job.started")
        return Claim(token, records)

    def heartbeat(self, token: str, job_ids: Sequence[str], now: float | None = None) -> set[str]:
        """Extend the lease of these jobs; answer the ids whose cancellation was asked for."""
        now = time.time() if now is None else now
        with self.db.begin() as connection:
            connection.execute(
                update(jobs)
                .where(jobs.c.claim_token == token, jobs.c.status == JobStatus.running.value)
                .values(lease_expires_at=now + self.lease_seconds, updated_at=now)
            )
            rows = connection.execute(
                select(jobs.c.id, jobs.c.status, jobs.c.cancel_requested).where(
                    jobs.c.id.in_(list(job_ids))
                )
            ).all()
        return {
            row.id for row in rows
            if row.cancel_requested or row.status != JobStatus.running.value
        }

    def set_progress(self, token: str, progress: dict[str, float]) -> None:
        now = time.time()
        # Jobs of a batch usually advance together: one UPDATE per distinct fraction.
        by_fraction: dict[float, list[str]] = {}
        for job_id, fraction in progress.items():
            by_fraction.setdefault(fraction, []).append(job_id)
        with self.feed.transaction(self.db) as connection:
            for fraction, job_ids in by_fraction.items():
                changed = set(connection.execute(
                    update(jobs)
                    .where(jobs.c.id.in_(job_ids), jobs.c.claim_token == token,
                           jobs.c.status == JobStatus.running.value)
                    .values(progress=fraction, updated_at=now)
                    .returning(jobs.c.id)
                ).scalars())
                self.emit(connection, [job_id for job_id in job_ids if job_id in changed],
                          "job.progress")

    def set_preview(self, token: str, job_id: str, key: str) -> str | None:
        """Record `key` as the running job's latest preview; answers the key that is no longer
        shown (the one it replaces, or `key` itself when the job is no longer this claim's)."""
        with self.feed.transaction(self.db) as connection:
            previous = connection.execute(
                select(jobs.c.preview_key).where(jobs.c.id == job_id, jobs.c.claim_token == token,
                                                 jobs.c.status == JobStatus.running.value)).first()
            if previous is None:
                return key
            connection.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.claim_token == token)
                               .values(preview_key=key))
            self.emit(connection, [job_id], "job.preview")
        return previous.preview_key  # type: ignore[no-any-return]

    # -- ending ---------------------------------------------------------------------------

    def succeed(self, job_id: str, token: str, outputs: list[dict[str, Any]],
                expires_at: float | None) -> bool:
        """Record the outputs; False if the job is no longer this claim's (canceled, re-leased)."""
        return job_id in self.succeed_many(token, {job_id: outputs}, expires_at)

    def succeed_many(self, token: str, outputs: dict[str, list[dict[str, Any]]],
                     expires_at: float | None) -> set[str]:
        """Succeed several jobs of one claim in one transaction; the ids that were still its own."""
        now = time.time()
        succeeded: set[str] = set()
        if not outputs:
            return succeeded
        with self.feed.transaction(self.db) as connection:
            for job_id, job_outputs in outputs.items():
                result = connection.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.claim_token == token,
                           jobs.c.status == JobStatus.running.value)
                    .values(status=JobStatus.succeeded.value, outputs=job_outputs, progress=1.0,
                            finished_at=now, updated_at=now, expires_at=expires_at,
                            lease_expires_at=None)
                )
                if result.rowcount:
                    succeeded.add(job_id)
            # The outputs' files were stored as pending by the worker; adopting them here
            # makes "succeeded" and "its files are kept" one atomic fact.
            adopted = {key: job_id for job_id in succeeded for output in outputs[job_id]
                       for key in output_keys(output)}
            self.files.adopt(connection, adopted, expires_at)
            self.emit(connection, [job_id for job_id in outputs if job_id in succeeded],
                      "job.succeeded")
        return succeeded

    def fail(self, job_id: str, code: str, message: str, *, token: str | None = None) -> bool:
        """Fail a queued or running job (a claim's, when `token` is given) and refund it."""
        return self._end(job_id, JobStatus.failed, token=token, error_code=code,
                         error_message=message)

    def cancel_running(self, job_id: str, token: str) -> bool:
        return self._end(job_id, JobStatus.canceled, token=token, error_code="canceled",
                         error_message="the job was canceled")

    def cancel_queued(self, job_id: str) -> bool:
        return self._end(job_id, JobStatus.canceled, token=None, error_code="canceled",
                         error_message="the job was canceled", only=JobStatus.queued)

    def request_cancel(self, job_id: str) -> None:
        with self.db.begin() as connection:
            connection.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == JobStatus.running.value)
                .values(cancel_requested=True, updated_at=time.time())
            )

    def _end(self, job_id: str, status: JobStatus, *, token: str | None, error_code: str,
             error_message: str, only: JobStatus | None = None) -> bool:
        now = time.time()
        guard = [jobs.c.id == job_id]
        if token is not None:
            guard += [jobs.c.claim_token == token, jobs.c.status == JobStatus.running.value]
        elif only is not None:
            guard.append(jobs.c.status == only.value)
        else:
            guard.append(jobs.c.status.in_([JobStatus.queued.value, JobStatus.running.value]))
        with self.feed.transaction(self.db) as connection:
            row = connection.execute(select(jobs.c.owner_id, jobs.c.cost).where(*guard)).first()
            if row is None:
                return False
            result = connection.execute(
                update(jobs).where(*guard).values(
                    status=status.value, finished_at=now, updated_at=now, lease_expires_at=None,
                    error_code=error_code, error_message=error_message,
                )
            )
            if not result.rowcount:
                return False
            self.ledger.refund(connection, row.owner_id, row.cost)
            self.emit(connection, [job_id], f"job.{status.value}")
        return True

    def release(self, token: str, job_ids: Sequence[str] | None = None) -> list[str]:
        """Hand a claim's running jobs (or these of them) back to the queue at once, when the
        server, not the job, cannot go on (a worker stopping, storage full): the ids queued again.
        The run is not counted as an attempt, since the job did not fail; a job back at no
        attempt forgets its start. It keeps its turn, so it runs next. Jobs whose cancellation
        was asked for are canceled instead. The claim's token is stale afterwards: whatever the
        worker still records for these jobs matches no row."""
        now = time.time()
        mine: tuple[Any, ...] = (jobs.c.claim_token == token, jobs.c.status == JobStatus.running.value)
        if job_ids is not None:
            if not job_ids:
                return []
            mine = (*mine, jobs.c.id.in_(list(job_ids)))
        with self.feed.transaction(self.db) as connection:
            released = list(connection.execute(
                update(jobs)
                .where(*mine, jobs.c.cancel_requested.is_(False))
                .values(status=JobStatus.queued.value, claim_token=None, lease_owner=None,
                        lease_expires_at=None, progress=0.0, updated_at=now,
                        attempts=jobs.c.attempts - 1,
                        started_at=case((jobs.c.attempts <= 1, None), else_=jobs.c.started_at))
                .returning(jobs.c.id)
            ).scalars())
            self.emit(connection, released, "job.requeued")
            to_cancel = connection.execute(select(jobs.c.id).where(*mine)).scalars().all()
        for job_id in to_cancel:
            self.cancel_running(job_id, token)
        return released

    def requeue_expired(self, now: float | None = None) -> None:
        """Jobs whose worker stopped heartbeating go back to the queue, or fail after the last try."""
        now = time.time() if now is None else now
        expired = and_(jobs.c.status == JobStatus.running.value, jobs.c.lease_expires_at < now)
        with self.db.connect() as connection:
            rows = connection.execute(
                select(jobs.c.id, jobs.c.attempts, jobs.c.max_attempts, jobs.c.claim_token,
                       jobs.c.cancel_requested).where(expired)
            ).all()
        for row in rows:
            if row.cancel_requested:
                self.cancel_running(row.id, row.claim_token)
            elif row.attempts >= row.max_attempts:
                self.fail(row.id, "worker_lost",
                          f"the worker running this job stopped responding {row.attempts} times; "
                          "the job was given up", token=row.claim_token)
            else:
                with self.feed.transaction(self.db) as connection:
                    requeued = connection.execute(
                        update(jobs)
                        .where(jobs.c.id == row.id, jobs.c.claim_token == row.claim_token, expired)
                        .values(status=JobStatus.queued.value, claim_token=None, lease_owner=None,
                                lease_expires_at=None, progress=0.0, updated_at=now)
                    )
                    if requeued.rowcount:
                        self.emit(connection, [row.id], "job.requeued")

    # -- reading --------------------------------------------------------------------------

    def next_turn(self, connection: Connection, owner_id: str, engine: str, priority: int) -> int:
        """Start-time fair queuing: a job's turn is one after its key's last waiting or running
        job, but never before the queue's front, so a newcomer waits behind one job of each busy
        key, not behind all of them."""
        front = connection.execute(_QUEUE_FRONT, {"engine": engine, "priority": priority}).scalar()
        if front is None:
            front = connection.execute(_LAST_RUN_TURN, {"engine": engine,
                                                        "priority": priority}).scalar() or 0
        own = connection.execute(_OWN_LAST_TURN, {"owner_id": owner_id, "engine": engine,
                                                  "priority": priority}).scalar() or 0
        return max(front, own + 1)

    def queue_position(self, record: JobRecord) -> int:
        """1 for the next job to run among those of its engine."""
        ahead = self._jobs_ahead.fetch(engine=record.engine, priority=record.priority,
                                       turn=record.turn, created_at=record.created_at)
        return int(next(iter(ahead.values()))) + 1 if ahead else 1


    def positions(self, engine: str, job_ids: Sequence[str]) -> dict[str, int]:
        """The queue positions of those of `job_ids` still queued among `engine`'s jobs, in one
        query (a watcher of each learns its new position from one read for all)."""
        if not job_ids:
            return {}
        ranked = select(
            jobs.c.id,
            func.rank().over(order_by=(jobs.c.priority.desc(), jobs.c.turn,
                                       jobs.c.created_at)).label("position"),
        ).where(jobs.c.status == JobStatus.queued.value, jobs.c.engine == engine).subquery()
        with self.db.connect() as connection:
            rows = connection.execute(select(ranked.c.id, ranked.c.position)
                                      .where(ranked.c.id.in_(list(job_ids)))).all()
        return {row.id: int(row.position) for row in rows}

    def rows(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """These jobs (those that exist), whoever owns them."""
        if not job_ids:
            return []
        with self.db.connect() as connection:
            rows = connection.execute(select(jobs).where(jobs.c.id.in_(list(job_ids)))).all()
        return [JobRecord.from_columns(row._mapping) for row in rows]

    def owned(self, job_id: str, owner_id: str) -> JobRecord | None:
        """The job if `owner_id` owns it, else None."""
        columns = self._own_job.fetch(job_id=job_id, owner_id=owner_id)
        return None if columns is None else JobRecord.from_columns(columns)

    def by_idempotency_key(self, owner_id: str, key: str) -> JobRecord | None:
        with self.db.connect() as connection:
            row = connection.execute(select(jobs).where(
                jobs.c.owner_id == owner_id, jobs.c.idempotency_key == key)).first()
        return None if row is None else JobRecord.from_columns(row._mapping)

    def page(self, owner_id: str, *, limit: int, offset: int,
             status: JobStatus | None = None, dialect: str | None = None,
             before: tuple[float, str] | None = None,
             created_after: float | None = None) -> tuple[list[JobRecord], int]:
        """The key's jobs, newest first, and how many it has in all (of this `dialect`;
        `before`: only those after this (created_at, id) in that order, a page's cursor)."""
        condition = [jobs.c.owner_id == owner_id]
        if status is not None:
            condition.append(jobs.c.status == status.value)
        if dialect is not None:
            condition.append(jobs.c.dialect == dialect)
        if created_after is not None:
            condition.append(jobs.c.created_at >= created_after)
        if before is not None:
            created_at, job_id = before
            condition.append((jobs.c.created_at < created_at)
                             | ((jobs.c.created_at == created_at) & (jobs.c.id < job_id)))
        with self.db.connect() as connection:
            total = connection.execute(
                select(func.count()).select_from(jobs).where(*condition)).scalar_one()
            rows = connection.execute(
                select(jobs).where(*condition)
                .order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit).offset(offset)
            ).all()
        return [JobRecord.from_columns(row._mapping) for row in rows], int(total)

    def mean_run_seconds(self, last: int = 500) -> dict[str, float]:
        """Mean run time per task of the last `last` jobs that succeeded."""
        with self.db.connect() as connection:
            recent = (
                select(jobs.c.task, (jobs.c.finished_at - jobs.c.started_at).label("seconds"))
                .where(jobs.c.status == JobStatus.succeeded.value)
                .order_by(jobs.c.finished_at.desc()).limit(last).subquery()
            )
            rows = connection.execute(
                select(recent.c.task, func.avg(recent.c.seconds)).group_by(recent.c.task)
            ).all()
        return {row[0]: float(row[1]) for row in rows if row[1] is not None}

    def worker_seen_since(self, since: float, now: float | None = None) -> bool:
        """Whether a worker showed itself in the jobs table since `since`: a job it runs on a
        live lease, or one it ended since then (an idle worker takes a queued job at once)."""
        now = time.time() if now is None else now
        with self.db.connect() as connection:
            running = connection.execute(select(jobs.c.id).where(
                jobs.c.status == JobStatus.running.value, jobs.c.lease_expires_at > now).limit(1)).first()
            if running is not None:
                return True
            ended = connection.execute(select(jobs.c.id).where(
                jobs.c.status.in_(_ENDED), jobs.c.started_at.is_not(None),
                jobs.c.finished_at >= since).limit(1)).first()
        return ended is not None

    def oldest_queued_at(self) -> float | None:
        """When the job that has waited longest entered the queue (None: none waits)."""
        with self.db.connect() as connection:
            oldest = connection.execute(select(func.min(jobs.c.updated_at)).where(
                jobs.c.status == JobStatus.queued.value)).scalar_one()
        return None if oldest is None else float(oldest)

    @staticmethod
    def _active(connection: Connection, owner_id: str) -> int:
        return int(connection.execute(select(func.count()).select_from(jobs).where(
            jobs.c.owner_id == owner_id, jobs.c.status.in_(_ACTIVE))).scalar_one())

    def active_count(self, owner_id: str) -> int:
        """The key's queued and running jobs."""
        with self.db.connect() as connection:
            return self._active(connection, owner_id)

    def reserved_cost(self, owner_id: str) -> int:
        """Credits held by the key's queued and running jobs."""
        with self.db.connect() as connection:
            return int(connection.execute(
                select(func.coalesce(func.sum(jobs.c.cost), 0)).where(
                    jobs.c.owner_id == owner_id, jobs.c.status.in_(_ACTIVE))
            ).scalar_one())

    def counts(self) -> list[tuple[str, str, int]]:
        """(status, task, number of jobs) for every pair that has jobs."""
        with self.db.connect() as connection:
            rows = connection.execute(
                select(jobs.c.status, jobs.c.task, func.count()).group_by(jobs.c.status, jobs.c.task)
            ).all()
        return [(row[0], row[1], int(row[2])) for row in rows]

    def depth(self) -> dict[str, int]:
        """Jobs queued and running: what the fleet has to do. One scan of the range of an index
        led by status (ix_jobs_claims) that holds them, however many ended jobs the table keeps:
        the autoscaler's figure (deploy/kubernetes's scaler runs the same count per status)."""
        wanted = [JobStatus.queued.value, JobStatus.running.value]
        with self.db.connect() as connection:
            rows = connection.execute(
                select(jobs.c.status, func.count()).where(jobs.c.status.in_(wanted))
                .group_by(jobs.c.status)).all()
        found = {row[0]: int(row[1]) for row in rows}
        return {status: found.get(status, 0) for status in wanted}

    @staticmethod
    def ended_before(cutoff: float) -> Select[Any]:
        """A subquery of the ids of jobs that ended before `cutoff`."""
        return select(jobs.c.id).where(
            jobs.c.status.in_([s.value for s in JobStatus if s.is_terminal]),
            jobs.c.finished_at <= cutoff,
        )
