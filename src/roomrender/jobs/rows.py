"""Turning jobs table rows into canonical Job objects."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from roomrender.jobs.models import GenerationRequest, Job, JobStatus, Output, Task
from roomrender.storage.base import Storage


def to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def outputs_from_json(raw: list[dict[str, Any]] | None, storage: Storage) -> list[Output]:
    return [
        Output(url=storage.url(item["key"]), key=item["key"], width=item["width"],
               height=item["height"], content_type=item["content_type"], label=item.get("label"))
        for item in raw or []
    ]


# A job's request never changes after submit, so it is parsed once per process.
_PARSED_REQUESTS: OrderedDict[str, GenerationRequest] = OrderedDict()
_PARSED_REQUESTS_MAX = 20_000
_parsed_lock = threading.Lock()


def parsed_request(job_id: str, raw: dict[str, Any]) -> GenerationRequest:
    request = _PARSED_REQUESTS.get(job_id)
    if request is None:
        request = GenerationRequest.model_validate(raw)
        with _parsed_lock:
            _PARSED_REQUESTS[job_id] = request
            if len(_PARSED_REQUESTS) > _PARSED_REQUESTS_MAX:
                _PARSED_REQUESTS.popitem(last=False)
    return request


def row_to_job(row: Any, storage: Storage, *, now: float | None = None) -> Job:
    m = row._mapping
    expired = m["expires_at"] is not None and now is not None and m["expires_at"] <= now
    return Job(
        id=m["id"],
        owner_id=m["owner_id"],
        dialect=m["dialect"],
        task=Task(m["task"]),
        status=JobStatus(m["status"]),
        request=parsed_request(m["id"], m["request"]),
        cost=m["cost"],
        priority=m["priority"],
        progress=m["progress"],
        attempts=m["attempts"],
        created_at=to_datetime(m["created_at"]),  # type: ignore[arg-type]
        started_at=to_datetime(m["started_at"]),
        finished_at=to_datetime(m["finished_at"]),
        expires_at=to_datetime(m["expires_at"]),
        outputs=[] if expired else outputs_from_json(m["outputs"], storage),
        error_code=m["error_code"],
        error_message=m["error_message"],
        cancel_requested=bool(m["cancel_requested"]),
    )
