"""JobService owns the rules: ownership, idempotency, credits, validation, cancellation."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from roomrender.catalog import find_room_type, find_style, room_types, styles
from roomrender.config import Settings
from roomrender.db.tables import api_keys, files, jobs
from roomrender.engines.base import Engine as RenderEngine
from roomrender.images import ImageLimits, check_image, decode_data_uri, fetch
from roomrender.jobs.errors import (
    Conflict,
    InsufficientCredits,
    InvalidRequest,
    JobNotCancelable,
    NotFound,
    UrlRefused,
)
from roomrender.jobs.keys import ApiKey
from roomrender.jobs.models import GenerationRequest, Job, JobStatus, Task
from roomrender.jobs.queue import JobQueue
from roomrender.jobs.rows import FastQuery, row_to_job
from roomrender.netsafety import check_url
from roomrender.storage import Storage, new_key

# Built once: the poll path is hot, and building a statement costs more than running it.
_JOB_OF_OWNER = select(jobs).where(jobs.c.id == bindparam("job_id"),
                                   jobs.c.owner_id == bindparam("owner_id"))

# Seconds a job of a task takes when no job of it has finished yet (for ETAs).
DEFAULT_SECONDS_PER_JOB = 5.0


@dataclass(frozen=True)
class StoredFile:
    key: str
    url: str
    content_type: str
    width: int | None
    height: int | None
    size: int
    expires_at: float | None


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    total: int


def request_hash(request: GenerationRequest) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_task_inputs(request: GenerationRequest) -> None:
    """What every engine needs for a task, whatever it is."""
    task = request.task
    if task != Task.text_to_image and not request.image:
        raise InvalidRequest(f"the task {task.value!r} needs an input image")
    if task == Task.text_to_image and not request.prompt:
        raise InvalidRequest("text_to_image needs a prompt")
    if task == Task.edit and not request.mask:
        raise InvalidRequest("an edit needs a mask image (white marks the area to change)")
    if task == Task.style_transfer and not request.reference_image:
        raise InvalidRequest("style_transfer needs a reference_image")
    if task == Task.recolor and not request.color:
        raise InvalidRequest("a recolor needs a color such as #A3B18A")
    if task == Task.upscale and request.scale is None:
        raise InvalidRequest("an upscale needs a scale of 2, 4 or 8")
    if request.style is not None and find_style(request.style) is None:
        raise InvalidRequest(
            f"unknown style {request.style!r}; accepted: {', '.join(sorted(styles()))}"
        )
    if request.room_type is not None and find_room_type(request.room_type) is None:
        raise InvalidRequest(
            f"unknown room type {request.room_type!r}; accepted: {', '.join(sorted(room_types()))}"
        )


class JobService:
    def __init__(self, settings: Settings, db: Engine, storage: Storage, engine: RenderEngine,
                 queue: JobQueue) -> None:
        self.settings = settings
        self.db = db
        self.storage = storage
        self.engine = engine
        self.queue = queue
        self.limits = ImageLimits(settings.max_input_bytes, settings.max_input_pixels)
        self._durations: dict[str, float] = {}
        self._durations_at = 0.0
        self._durations_lock = threading.Lock()
        self._own_job = FastQuery(db, _JOB_OF_OWNER, json_columns=("request", "outputs"))

    # -- inputs ---------------------------------------------------------------------------

    def store_upload(self, owner: ApiKey, data: bytes, name: str | None = None, *,
                     kind: str = "upload", what: str = "upload", key: str | None = None,
                     ttl_seconds: float | None = None) -> StoredFile:
        """Check an input image and keep it; its key is the upload id.

        `key` stores it under a key chosen beforehand (a signed upload URL's), once: a second
        store under the same key is a Conflict. `ttl_seconds` overrides the upload TTL.
        """
        checked = check_image(data, self.limits, what=what)
        key = key or new_key(checked.content_type, prefix="in-")
        now = time.time()
        ttl = self.settings.upload_ttl_seconds if ttl_seconds is None else ttl_seconds
        expires_at = now + ttl if kind == "upload" else None
        try:
            # The row first: of two stores racing for one key, only one writes the file.
            with self.db.begin() as connection:
                connection.execute(insert(files).values(
                    key=key, owner_id=owner.id, kind=kind, name=name,
                    content_type=checked.content_type, width=checked.width, height=checked.height,
                    size=len(checked.data), created_at=now, expires_at=expires_at,
                ))
        except IntegrityError as taken:
            raise Conflict(f"a file was already stored as {key!r}", code="file_exists") from taken
        try:
            self.storage.put(key, checked.data, checked.content_type)
        except BaseException:
            with self.db.begin() as connection:
                connection.execute(delete(files).where(files.c.key == key))
            raise
        return StoredFile(key, self.storage.url(key), checked.content_type, checked.width,
                          checked.height, len(checked.data), expires_at)

    def _own_file_key(self, ref: str) -> str | None:
        """The storage key when `ref` is one of this server's own file URLs (any storage)."""
        if not ref.startswith(("http://", "https://")):
            return None
        return self.storage.key_for_url(ref)

    def _file_row(self, owner: ApiKey, key: str) -> Any:
        with self.db.connect() as connection:
            return connection.execute(select(files).where(files.c.key == key)).first()

    def resolve_image(self, owner: ApiKey, ref: str, what: str) -> StoredFile:
        """An image reference (URL, data URI, upload id) → a checked, stored input file."""
        own_key = self._own_file_key(ref)
        if own_key is not None or not (":" in ref):
            key = own_key if own_key is not None else ref
            row = self._file_row(owner, key)
            # Result URLs are public by design; upload ids are private to their key.
            if row is None or (own_key is None and row.owner_id != owner.id):
                raise InvalidRequest(f"the {what} {ref!r} is not a known upload id or URL")
            if row.expires_at is not None and row.expires_at <= time.time():
                raise InvalidRequest(f"the {what} {ref!r} has expired")
            return StoredFile(row.key, self.storage.url(row.key), row.content_type, row.width,
                              row.height, row.size, row.expires_at)
        if ref.startswith("data:"):
            data = decode_data_uri(ref, self.limits)
        elif ref.startswith(("http://", "https://")):
            data = fetch(ref, self.limits, timeout=self.settings.fetch_timeout_seconds,
                         allow_private=self.settings.allow_private_urls)
        else:
            raise InvalidRequest(
                f"the {what} must be an http(s) URL, a data: URI or an upload id, not {ref[:40]!r}"
            )
        return self.store_upload(owner, data, kind="input", what=what)

    # -- submitting -----------------------------------------------------------------------

    def submit(self, owner: ApiKey, request: GenerationRequest, *, dialect: str = "native",
               idempotency_key: str | None = None) -> Job:
        digest = request_hash(request)
        if idempotency_key:
            existing = self._by_idempotency_key(owner, idempotency_key)
            if existing is not None:
                return self._replay(existing, digest)
        check_task_inputs(request)
        if request.webhook:
            try:
                check_url(request.webhook, allow_private=self.settings.allow_private_urls)
            except UrlRefused as refused:
                raise UrlRefused(f"the webhook URL is refused: {refused.message}") from refused
        self.engine.validate(request)
        self._check_credits(owner, request.n)

        resolved: dict[str, str] = {}
        size: tuple[int | None, int | None] = (request.width, request.height)
        for field_name, ref in request.image_refs().items():
            stored = self.resolve_image(owner, ref, field_name.replace("_", " "))
            resolved[field_name] = stored.key
            if field_name == "image":
                size = (stored.width, stored.height)
        request = self._with_resolved(request, resolved)
        self._check_output_size(request, size)

        now = time.time()
        job_id = str(uuid.uuid4())
        row = dict(
            id=job_id, owner_id=owner.id, dialect=dialect, task=request.task.value,
            status=JobStatus.queued.value, engine=self.engine.name,
            batch_key=self.engine.batch_key(request, *size),
            request=request.model_dump(mode="json"), cost=request.n, priority=request.priority,
            progress=0.0, attempts=0, max_attempts=self.settings.max_attempts,
            cancel_requested=False, idempotency_key=idempotency_key, request_hash=digest,
            created_at=now, updated_at=now,
        )
        try:
            with self.db.begin() as connection:
                charged = connection.execute(
                    update(api_keys)
                    .where(api_keys.c.id == owner.id,
                           (api_keys.c.credits_granted.is_(None))
                           | (api_keys.c.credits_granted - api_keys.c.credits_used >= request.n))
                    .values(credits_used=api_keys.c.credits_used + request.n)
                )
                if not charged.rowcount:
                    raise InsufficientCredits(self._credits_message(owner, request.n))
                row["turn"] = self.queue.next_turn(connection, owner.id, self.engine.name,
                                                   request.priority)
                connection.execute(insert(jobs).values(**row))
                connection.execute(
                    update(files).where(files.c.key.in_(list(resolved.values())),
                                        files.c.job_id.is_(None)).values(job_id=job_id)
                )
                self.queue.emit(connection, [job_id], "job.queued")
        except IntegrityError:
            # Another request with the same idempotency key won the race.
            if idempotency_key:
                existing = self._by_idempotency_key(owner, idempotency_key)
                if existing is not None:
                    return self._replay(existing, digest)
            raise
        return self.get(owner, job_id)

    def _by_idempotency_key(self, owner: ApiKey, key: str) -> Any:
        with self.db.connect() as connection:
            return connection.execute(select(jobs).where(
                jobs.c.owner_id == owner.id, jobs.c.idempotency_key == key)).first()

    def _replay(self, row: Any, digest: str) -> Job:
        if row.request_hash != digest:
            raise Conflict(
                "this Idempotency-Key was already used with a different request",
                code="idempotency_key_reused",
            )
        return self.present(row)

    @staticmethod
    def _with_resolved(request: GenerationRequest, resolved: dict[str, str]) -> GenerationRequest:
        updates: dict[str, Any] = {}
        extras = list(request.extra_images)
        for field_name, key in resolved.items():
            if field_name.startswith("extra_images."):
                extras[int(field_name.split(".")[1])] = key
            else:
                updates[field_name] = key
        updates["extra_images"] = extras
        return request.model_copy(update=updates)

    def _check_output_size(self, request: GenerationRequest, size: tuple[int | None, int | None]) -> None:
        width, height = size
        if width is None or height is None:
            return
        factor = request.scale if request.task == Task.upscale and request.scale else 1
        if request.task == Task.expand and request.expand is not None:
            width = round(width * (1 + request.expand.left + request.expand.right))
            height = round(height * (1 + request.expand.top + request.expand.bottom))
        pixels = width * height * factor * factor
        if pixels > self.settings.max_output_pixels:
            raise InvalidRequest(
                f"the output would be {pixels} pixels; at most {self.settings.max_output_pixels} "
                "are produced (use a smaller image or scale)",
                code="output_too_large",
            )

    def _check_credits(self, owner: ApiKey, cost: int) -> None:
        with self.db.connect() as connection:
            row = connection.execute(select(api_keys.c.credits_granted, api_keys.c.credits_used)
                                     .where(api_keys.c.id == owner.id)).one()
        if row.credits_granted is not None and row.credits_granted - row.credits_used < cost:
            raise InsufficientCredits(self._credits_message(owner, cost))

    def _credits_message(self, owner: ApiKey, cost: int) -> str:
        with self.db.connect() as connection:
            row = connection.execute(select(api_keys.c.credits_granted, api_keys.c.credits_used)
                                     .where(api_keys.c.id == owner.id)).one()
        left = max(0, (row.credits_granted or 0) - row.credits_used)
        return f"not enough credits: this job costs {cost} and the key has {left} left"

    # -- reading --------------------------------------------------------------------------

    def get(self, owner: ApiKey, job_id: str) -> Job:
        row = self._own_job.fetch(job_id=job_id, owner_id=owner.id)
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return self.present(row)

    def list(self, owner: ApiKey, *, limit: int = 20, offset: int = 0,
             status: JobStatus | None = None) -> JobPage:
        condition = [jobs.c.owner_id == owner.id]
        if status is not None:
            condition.append(jobs.c.status == status.value)
        with self.db.connect() as connection:
            total = connection.execute(
                select(func.count()).select_from(jobs).where(*condition)).scalar_one()
            rows = connection.execute(
                select(jobs).where(*condition)
                .order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit).offset(offset)
            ).all()
            return JobPage([self.present(row) for row in rows], int(total))

    def present(self, row: Any) -> Job:
        """A jobs row as the Job its owner would get now (queue position and ETA included)."""
        now = time.time()
        job = row_to_job(row, self.storage, now=now)
        if job.status.is_terminal:
            return job
        average = self._seconds_per_job(row.task)
        if job.status == JobStatus.queued:
            job.queue_position = self.queue.queue_position(row)
            job.eta_seconds = round(job.queue_position * average, 1)
        elif job.status == JobStatus.running:
            elapsed = now - (row.started_at or now)
            if row.progress > 0.05:
                remaining = elapsed * (1 - row.progress) / row.progress
            else:
                remaining = max(average - elapsed, 0.5)
            job.eta_seconds = round(remaining, 1)
        return job

    def _seconds_per_job(self, task: str) -> float:
        """Mean run time of the last jobs of `task`, refreshed every few seconds."""
        now = time.monotonic()
        if now - self._durations_at > 10.0:
            with self._durations_lock, self.db.connect() as connection:
                recent = (
                    select(jobs.c.task, (jobs.c.finished_at - jobs.c.started_at).label("seconds"))
                    .where(jobs.c.status == JobStatus.succeeded.value)
                    .order_by(jobs.c.finished_at.desc()).limit(500).subquery()
                )
                rows = connection.execute(
                    select(recent.c.task, func.avg(recent.c.seconds)).group_by(recent.c.task)
                ).all()
                self._durations = {row[0]: float(row[1]) for row in rows if row[1] is not None}
                self._durations_at = now
        return self._durations.get(task, DEFAULT_SECONDS_PER_JOB)

    # -- canceling ------------------------------------------------------------------------

    def cancel(self, owner: ApiKey, job_id: str) -> Job:
        job = self.get(owner, job_id)
        if job.status == JobStatus.queued and self.queue.cancel_queued(job_id):
            return self.get(owner, job_id)
        job = self.get(owner, job_id)
        if job.status == JobStatus.running:
            self.queue.request_cancel(job_id)
            return self.get(owner, job_id)
        if job.status == JobStatus.canceled:
            return job
        raise JobNotCancelable(f"the job has already {job.status.value}; it cannot be canceled")

    # -- credits --------------------------------------------------------------------------

    def credits(self, owner: ApiKey) -> dict[str, int | None]:
        with self.db.connect() as connection:
            row = connection.execute(select(api_keys).where(api_keys.c.id == owner.id)).one()
            pending = connection.execute(
                select(func.coalesce(func.sum(jobs.c.cost), 0)).where(
                    and_(jobs.c.owner_id == owner.id,
                         jobs.c.status.in_([JobStatus.queued.value, JobStatus.running.value])))
            ).scalar_one()
        available = None if row.credits_granted is None else max(
            0, row.credits_granted - row.credits_used)
        return {"available": available, "used": int(row.credits_used),
                "granted": row.credits_granted, "reserved": int(pending)}
