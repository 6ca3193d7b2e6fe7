"""The jobs table's rows as typed records: what the queue hands out (JobRecord) and what it is
handed to queue (NewJob). Nothing outside `jobs/` sees a row."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from roomrender.canonical.models import REQUEST_VERSION, GenerationRequest, JobStatus

# A JSON document as stored (the request, an output).
Json = dict[str, Any]

# A job's request never changes after submit, so it is parsed once per process.
_PARSED_REQUESTS: OrderedDict[str, GenerationRequest] = OrderedDict()
_PARSED_REQUESTS_MAX = 20_000
_parsed_lock = threading.Lock()


def parsed_request(job_id: str, raw: Json, *, known_fields_only: bool = False) -> GenerationRequest:
    request = _PARSED_REQUESTS.get(job_id)
    if request is None:
        if known_fields_only:
            raw = {name: value for name, value in raw.items()
                   if name in GenerationRequest.model_fields}
        request = GenerationRequest.model_validate(raw)
        with _parsed_lock:
            _PARSED_REQUESTS[job_id] = request
            if len(_PARSED_REQUESTS) > _PARSED_REQUESTS_MAX:
                _PARSED_REQUESTS.popitem(last=False)
    return request


@dataclass(frozen=True)
class JobRecord:
    """One job as stored: every column of its row, typed. Times are epoch seconds."""

    id: str
    owner_id: str
    dialect: str
    # The task's name as stored: a newer API may have written a task this process does not know
    # (the queue still moves such a job; only a worker that knows it claims it).
    task: str
    status: JobStatus
    engine: str
    batch_key: str
    request: Json
    cost: int
    priority: int
    turn: int
    progress: float
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: float | None
    claim_token: str | None
    cancel_requested: bool
    idempotency_key: str | None
    request_hash: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    expires_at: float | None
    outputs: list[Json] | None
    error_code: str | None
    error_message: str | None
    preview_key: str | None
    # The GenerationRequest version of the API that wrote it (canonical REQUEST_VERSION).
    request_version: int

    @classmethod
    def from_columns(cls, columns: Mapping[Any, Any]) -> JobRecord:
        """The record of a row's columns (a SQLAlchemy row's mapping, a FastQuery row, a change's
        data merged over an earlier record's columns), JSON columns already decoded.

        Filled in place of the generated __init__: the poll path builds one record per read,
        and an __init__ of 30 frozen fields costs a good part of the read itself."""
        values = dict(columns)
        if values.keys() != _FIELD_NAMES:
            # Columns this process does not know (a newer process's change) are left out.
            values = {name: columns[name] for name in _FIELDS}
        values["status"] = _STATUSES[values["status"]]
        # Raw driver rows carry SQLite's 0/1.
        values["cancel_requested"] = bool(values["cancel_requested"])
        record = object.__new__(cls)
        record.__dict__.update(values)
        return record

    def columns(self) -> Json:
        """The record's columns by name (a copy)."""
        return dict(self.__dict__)

    def merged(self, changes: Mapping[str, Any]) -> JobRecord:
        """This record with some columns changed (a change feed's data)."""
        return JobRecord.from_columns({**self.__dict__, **changes})

    def generation_request(self) -> GenerationRequest:
        """The job's request, parsed (once per process). One of a newer version than this
        process knows (a newer API wrote it, only a newer worker runs it) is read without the
        fields this process does not know, so that the job can be shown while the upgrade rolls
        out."""
        return parsed_request(self.id, self.request,
                              known_fields_only=self.request_version > REQUEST_VERSION)


_FIELDS = tuple(field.name for field in fields(JobRecord))
_FIELD_NAMES = frozenset(_FIELDS)
_STATUSES = {status.value: status for status in JobStatus}


@dataclass(frozen=True)
class NewJob:
    """A job JobService has checked, for the queue to write as a queued row."""

    id: str
    owner_id: str
    dialect: str
    engine: str
    # Jobs with the same batch key may run in one engine batch.
    batch_key: str
    request: GenerationRequest
    cost: int
    max_attempts: int
    # The version of `request` (canonical REQUEST_VERSION, as the API that wrote it knows it):
    # only workers that know it claim the job.
    request_version: int
    idempotency_key: str | None = None
    request_hash: str | None = None

    def columns(self, now: float, turn: int) -> Json:
        """Its row in the jobs table, queued at `now` in `turn`."""
        return dict(
            id=self.id, owner_id=self.owner_id, dialect=self.dialect, task=self.request.task.value,
            status=JobStatus.queued.value, engine=self.engine, batch_key=self.batch_key,
            request=self.request.model_dump(mode="json"), cost=self.cost,
            priority=self.request.priority, turn=turn, progress=0.0, attempts=0,
            max_attempts=self.max_attempts, cancel_requested=False,
            idempotency_key=self.idempotency_key, request_hash=self.request_hash,
            request_version=self.request_version, created_at=now, updated_at=now,
        )
