"""JobService owns the rules: ownership, idempotency, credits, validation, cancellation."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from roomrender.accounts.credits import CreditLedger
from roomrender.accounts.fetch_slots import FetchSlots
from roomrender.accounts.keys import ApiKey
from roomrender.accounts.limits import max_active_jobs, too_many_active_jobs
from roomrender.canonical.boxes import placement_problem
from roomrender.canonical.errors import (
    Conflict,
    InsufficientCredits,
    InvalidRequest,
    JobNotCancelable,
    NotFound,
    UrlRefused,
)
from roomrender.canonical.metrology import GeometryError, measure_room, true_size_box
from roomrender.canonical.models import REQUEST_VERSION, GenerationRequest, Job, JobStatus, Task
from roomrender.canonical.tasks import TASKS, cost_of, missing_input
from roomrender.catalog import find_room_type, find_style, room_types, styles
from roomrender.config import Settings
from roomrender.engines.base import Engine as RenderEngine
from roomrender.images import ImageLimits, check_image, decode_data_uri, fetch
from roomrender.jobs.conversations import with_history
from roomrender.jobs.queue import JobQueue
from roomrender.jobs.records import JobRecord, NewJob
from roomrender.jobs.rows import to_job
from roomrender.jobs.worker_presence import WorkerPresence
from roomrender.netsafety import check_url
from roomrender.storage import new_key
from roomrender.storage.files import FileStore, NewFile, StoredFile

_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Pages of a key's jobs: an offset past any real count is refused before SQL (which takes
# 64-bit integers at most).
MAX_PAGE_OFFSET = 1_000_000_000
MAX_PAGE_LIMIT = 100
# Seconds a job of a task takes when no job of it has finished yet (for ETAs).
DEFAULT_SECONDS_PER_JOB = 5.0


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    total: int
    # (created_at, id) of the page's last job, exactly as stored: where the next page starts.
    last: tuple[float, str] | None = None


def request_hash(request: GenerationRequest) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def looks_like_job_id(job_id: str) -> bool:
    """Job ids are UUIDs: anything else is no job, and is not sent to the database."""
    return len(job_id) == 36 and _JOB_ID.fullmatch(job_id) is not None


def storable_text(text: str) -> str:
    """`text` without lone surrogates nor NUL characters, which databases cannot store."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def check_task_inputs(request: GenerationRequest) -> None:
    """What every engine needs for a task (its definition, canonical/tasks.py), and known style
    names."""
    problem = missing_input(request)
    if problem is not None:
        raise InvalidRequest(problem)
    if request.style is not None and find_style(request.style) is None:
        raise InvalidRequest(
            f"unknown style {request.style!r}; accepted: {', '.join(sorted(styles()))}"
        )
    if request.room_type is not None and find_room_type(request.room_type) is None:
        raise InvalidRequest(
            f"unknown room type {request.room_type!r}; accepted: {', '.join(sorted(room_types()))}"
        )


class JobService:
    def __init__(self, settings: Settings, files: FileStore, engine: RenderEngine,
                 queue: JobQueue, ledger: CreditLedger) -> None:
        self.settings = settings
        self.files = files
        self.engine = engine
        self.queue = queue
        self.ledger = ledger
        self.limits = ImageLimits(settings.max_input_bytes, settings.max_input_pixels)
        self.fetch_slots = FetchSlots(settings.fetch_concurrency, settings.fetch_per_key)
        self._durations: dict[str, float] = {}
        self._durations_at = 0.0
        self._durations_lock = threading.Lock()
        # The version of the requests this API writes: workers that know it run its jobs.
        self.request_version = REQUEST_VERSION
        self.worker_presence = WorkerPresence(queue, settings.no_worker_after_seconds)

    # -- inputs ---------------------------------------------------------------------------

    def store_upload(self, owner: ApiKey, data: bytes, name: str | None = None, *,
                     kind: str = "upload", what: str = "upload", key: str | None = None,
                     ttl_seconds: float | None = None) -> StoredFile:
        """Check an input image and keep it; its key is the upload id.

        `key` stores it under a key chosen beforehand (a signed upload URL's), once: a second
        store under the same key is a Conflict. `ttl_seconds` overrides the upload TTL.
        """
        checked = check_image(data, self.limits, what=what)
        ttl = self.settings.upload_ttl_seconds if ttl_seconds is None else ttl_seconds
        name = None if name is None else storable_text(name)[:255]
        expires_at = time.time() + ttl if kind == "upload" else None
        new = NewFile(key or new_key(checked.content_type, prefix="in-"), checked.data,
                      checked.content_type, checked.width, checked.height)
        return self.files.save(owner.id, new, kind=kind, name=name, expires_at=expires_at)

    def upload(self, owner: ApiKey, key: str) -> StoredFile:
        """One of the key's uploads, not expired."""
        stored = self.files.lookup(key)
        if stored is None or stored.kind != "upload" or stored.owner_id != owner.id or stored.expired():
            raise NotFound(f"no upload {key!r}")
        return stored

    def uploads(self, owner: ApiKey, *, limit: int = 100) -> list[StoredFile]:
        return self.files.uploads(owner.id, limit=limit)

    def delete_upload(self, owner: ApiKey, key: str) -> None:
        """Delete an upload no job has used (a job's inputs go with the job's data)."""
        stored = self.upload(owner, key)
        if stored.job_id is not None:
            raise Conflict(f"the upload {key!r} is an input of the job {stored.job_id}; it is "
                           "deleted with that job's data", code="file_in_use")
        self.files.discard([key])

    def _own_file_key(self, ref: str) -> str | None:
        """The storage key when `ref` is one of this server's own file URLs (any storage)."""
        if not ref.startswith(("http://", "https://")):
            return None
        return self.files.storage.key_for_url(ref)

    def resolve_image(self, owner: ApiKey, ref: str, what: str) -> StoredFile:
        """An image reference (URL, data URI, upload id) → a checked, stored input file."""
        found = self._prepare_input(owner, ref, what)
        if isinstance(found, StoredFile):
            return found
        return self.files.save(owner.id, found, kind="input")

    def keep_image(self, owner: ApiKey, ref: str, what: str) -> StoredFile:
        """An image reference (URL fetched safely, data URI, upload id, one of the key's job
        outputs) kept for good: a copy of its own (kind "kept", no expiry), so that a board or a
        persona holds it after the job's data or the upload expires."""
        found = self._prepare_input(owner, ref, what)
        if isinstance(found, StoredFile):
            found = NewFile(new_key(found.content_type, prefix="kept-"),
                            self.files.storage.get(found.key), found.content_type,
                            found.width, found.height)
        else:
            found = NewFile(new_key(found.content_type, prefix="kept-"), found.data,
                            found.content_type, found.width, found.height)
        return self.files.save(owner.id, found, kind="kept")

    def _prepare_input(self, owner: ApiKey, ref: str, what: str) -> StoredFile | NewFile:
        """An image reference → the stored file it names, or the checked new file it brings
        (fetched or decoded, not stored yet)."""
        own_key = self._own_file_key(ref)
        if own_key is not None or ":" not in ref:
            key = own_key if own_key is not None else ref
            stored = self.files.lookup(key)
            # A file of this server, by id or by its URL, is the key's own or unknown to it:
            # another key's file is not taken by naming its URL either.
            if stored is None or stored.owner_id != owner.id:
                raise InvalidRequest(f"the {what} {ref[:100]!r} is not a known upload id or URL")
            if stored.expired():
                raise InvalidRequest(f"the {what} {ref[:100]!r} has expired")
            return stored
        if ref.startswith("data:"):
            data = decode_data_uri(ref, self.limits)
        elif ref.startswith(("http://", "https://")):
            data = self.fetch_slots.run(owner.id, lambda: fetch(
                ref, self.limits, timeout=self.settings.fetch_timeout_seconds,
                allow_private=self.settings.allow_private_urls,
                ca_file=self.settings.outbound_ca_file or None))
        else:
            raise InvalidRequest(
                f"the {what} must be an http(s) URL, a data: URI or an upload id, not {ref[:40]!r}"
            )
        checked = check_image(data, self.limits, what=what)
        return NewFile(new_key(checked.content_type, prefix="in-"), checked.data,
                       checked.content_type, checked.width, checked.height)

    # -- submitting -----------------------------------------------------------------------

    def submit(self, owner: ApiKey, request: GenerationRequest, *, dialect: str = "native",
               idempotency_key: str | None = None, cost: int | None = None) -> Job:
        """Check everything that costs nothing first, then fetch and check the inputs, then
        store them and queue the job; a request refused at any step leaves nothing behind.
        `cost`: the dialect's own price of the job (a vendor's credits a clip), else the task's."""
        digest = request_hash(request)
        if idempotency_key:
            existing = self._by_idempotency_key(owner, idempotency_key)
            if existing is not None:
                return self._replay(existing, digest)
        check_task_inputs(request)
        if request.webhook:
            webhook = request.webhook
            try:
                # Resolving its host may take a while too: it counts as one of the key's fetches.
                self.fetch_slots.run(owner.id, lambda: check_url(
                    webhook, allow_private=self.settings.allow_private_urls))
            except UrlRefused as refused:
                raise UrlRefused(f"the webhook URL is refused: {refused.message}") from refused
        self.engine.validate(request)
        request = with_history(request, lambda job_id: self.get(owner, job_id), self.files.storage.get)
        cost = cost_of(request) if cost is None else cost
        self._check_credits(owner, cost)
        max_active = self.max_active_jobs(owner)
        self._check_active_jobs(owner, max_active)

        inputs: dict[str, StoredFile | NewFile] = {}
        size: tuple[int | None, int | None] = (request.width, request.height)
        for field_name, ref in request.image_refs().items():
            found = self._prepare_input(owner, ref, field_name.replace("_", " "))
            inputs[field_name] = found
            if field_name == "image":
                size = (found.width, found.height)
        self._check_output_size(request, size)
        request = self._with_geometry(request, size)
        self._check_boxes(request, size)
        request = self._with_resolved(request, {name: found.key for name, found in inputs.items()})

        new_job = NewJob(
            id=str(uuid.uuid4()), owner_id=owner.id, dialect=dialect, engine=self.engine.name,
            batch_key=self.engine.batch_key(request, *size), request=request, cost=cost,
            max_attempts=self.settings.max_attempts, request_version=self.request_version,
            idempotency_key=idempotency_key, request_hash=digest,
        )
        new_files = [found for found in inputs.values() if isinstance(found, NewFile)]
        self.files.save_all(owner.id, new_files, kind="input")
        try:
            if not self.queue.enqueue(new_job, [found.key for found in inputs.values()],
                                      max_active=max_active):
                raise InsufficientCredits(self._credits_message(owner, cost))
        except BaseException as refused:
            # Nothing of a refused request stays: the inputs it brought go with it.
            self.files.discard([new.key for new in new_files])
            if isinstance(refused, IntegrityError) and idempotency_key:
                # Another request with the same idempotency key won the race.
                existing = self._by_idempotency_key(owner, idempotency_key)
                if existing is not None:
                    return self._replay(existing, digest)
            raise
        return self.get(owner, new_job.id)

    def max_active_jobs(self, owner: ApiKey) -> int | None:
        """The key's cap on queued and running jobs (its own, else the server's)."""
        return max_active_jobs(owner, self.settings.max_active_jobs)

    def _check_active_jobs(self, owner: ApiKey, max_active: int | None) -> None:
        if max_active is not None and self.queue.active_count(owner.id) >= max_active:
            raise too_many_active_jobs(max_active)

    def _by_idempotency_key(self, owner: ApiKey, key: str) -> JobRecord | None:
        return self.queue.by_idempotency_key(owner.id, key)

    def _replay(self, record: JobRecord, digest: str) -> Job:
        if record.request_hash != digest:
            raise Conflict(
                "this Idempotency-Key was already used with a different request",
                code="idempotency_key_reused",
            )
        return self.present(record)

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
        if size[0] is None or size[1] is None:
            return
        width, height = TASKS[request.task].output_size(request, size[0], size[1])
        pixels = width * height
        if pixels > self.settings.max_output_pixels:
            raise InvalidRequest(
                f"the output would be {pixels} pixels; at most {self.settings.max_output_pixels} "
                "are produced (use a smaller image or scale)",
                code="output_too_large",
            )

    @staticmethod
    def _with_geometry(request: GenerationRequest,
                       size: tuple[int | None, int | None]) -> GenerationRequest:
        """Marks on the photo must make a room (measure) or a wall (true size): checked once the
        photo's size is known. A true size sets the placement."""
        width, height = size
        if width is None or height is None:
            return request
        try:
            if request.task == Task.measure and request.room is not None and request.room_height:
                measure_room(request.room, request.room_height, width, height)
            if request.task == Task.place and request.true_size is not None:
                placement = true_size_box(request.true_size, width, height)
                return request.model_copy(update={"placement": placement})
        except GeometryError as bad:
            raise InvalidRequest(str(bad), code="invalid_geometry") from None
        return request

    @staticmethod
    def _check_boxes(request: GenerationRequest, size: tuple[int | None, int | None]) -> None:
        """A placement (and its area) must fit the photo: only known once the photo is read."""
        width, height = size
        if request.placement is None or width is None or height is None:
            return
        problem = placement_problem(request.placement, request.area_box, width, height)
        if problem is not None:
            raise InvalidRequest(problem, code="invalid_box")

    def _check_credits(self, owner: ApiKey, cost: int) -> None:
        if not self.ledger.balance(owner.id).covers(cost):
            raise InsufficientCredits(self._credits_message(owner, cost))

    def _credits_message(self, owner: ApiKey, cost: int) -> str:
        left = self.ledger.balance(owner.id).available or 0
        return f"not enough credits: this job costs {cost} and the key has {left} left"

    # -- reading --------------------------------------------------------------------------

    def get(self, owner: ApiKey, job_id: str) -> Job:
        if not looks_like_job_id(job_id):
            raise NotFound(f"no job {job_id[:100]!r}")
        record = self.queue.owned(job_id, owner.id)
        if record is None:
            raise NotFound(f"no job {job_id!r}")
        return self.present(record)

    def list(self, owner: ApiKey, *, limit: int = 20, offset: int = 0,
             status: JobStatus | None = None, dialect: str | None = None,
             before: tuple[float, str] | None = None,
             created_after: float | None = None) -> JobPage:
        if not 0 <= offset <= MAX_PAGE_OFFSET or not 1 <= limit <= MAX_PAGE_LIMIT:
            raise InvalidRequest(f"offset must be 0..{MAX_PAGE_OFFSET} and limit "
                                 f"1..{MAX_PAGE_LIMIT}")
        records, total = self.queue.page(owner.id, limit=limit, offset=offset, status=status,
                                         dialect=dialect, before=before,
                                         created_after=created_after)
        last = (records[-1].created_at, records[-1].id) if records else None
        return JobPage([self.present(record) for record in records], total, last)

    def present(self, record: JobRecord, queue_position: int | None = None) -> Job:
        """A job as its owner would get it now (queue position and ETA included; the position
        is read unless given)."""
        now = time.time()
        job = to_job(record, self.files.storage, now=now)
        if job.status.is_terminal:
            return job
        average = self._seconds_per_job(record.task)
        if job.status == JobStatus.queued:
            job.queue_position = (self.queue.queue_position(record) if queue_position is None
                                  else queue_position)
            job.waiting_for = self.worker_presence.waiting_for(record.updated_at, now)
            # Without a worker, any ETA would be a guess.
            job.eta_seconds = None if job.waiting_for else round(job.queue_position * average, 1)
        elif job.status == JobStatus.running:
            elapsed = now - (record.started_at or now)
            if record.progress > 0.05:
                remaining = elapsed * (1 - record.progress) / record.progress
            else:
                remaining = max(average - elapsed, 0.5)
            job.eta_seconds = round(remaining, 1)
        return job

    def _seconds_per_job(self, task: str) -> float:
        """Mean run time of the last jobs of `task`, refreshed every few seconds."""
        now = time.monotonic()
        if now - self._durations_at > 10.0:
            with self._durations_lock:
                self._durations = self.queue.mean_run_seconds()
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
        balance = self.ledger.balance(owner.id)
        return {"available": balance.available, "used": balance.used, "granted": balance.granted,
                "reserved": self.queue.reserved_cost(owner.id)}
