"""Canonical things as the native API answers them: a job (with its typed outputs, one per
artifact, whatever its kind), a page of jobs, an upload, the catalog, the account; and a job's
Server-Sent Events. The pydantic models document the shapes in the OpenAPI schema."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from roomrender.api.deps import iso
from roomrender.api.sse import sse
from roomrender.canonical.artifacts import ArtifactKind
from roomrender.canonical.models import Job, JobStatus, Task
from roomrender.canonical.tasks import TASKS
from roomrender.catalog import room_types, styles
from roomrender.engines.base import Engine
from roomrender.jobs.service import JobPage
from roomrender.jobs.watch import JobUpdate
from roomrender.storage.files import StoredFile


class OutputOut(BaseModel):
    kind: ArtifactKind
    url: str
    content_type: str
    width: int | None = None
    height: int | None = None
    size_bytes: int | None = None
    duration_seconds: float | None = None
    fps: float | None = None
    poster_url: str | None = None
    label: str | None = None


class ErrorOut(BaseModel):
    code: str
    message: str


class JobUrls(BaseModel):
    self: str
    cancel: str
    events: str


class JobOut(BaseModel):
    id: str
    status: JobStatus
    task: Task
    progress: int
    queue_position: int | None
    eta_seconds: float | None
    # What a queued job waits for besides its turn, in words (no worker is running).
    waiting_for: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    outputs: list[OutputOut]
    error: ErrorOut | None
    n: int
    priority: int
    urls: JobUrls
    preview: str | None = None


class JobListOut(BaseModel):
    data: list[JobOut]
    total: int
    limit: int
    offset: int


class UploadOut(BaseModel):
    id: str
    url: str
    content_type: str
    width: int | None
    height: int | None
    size: int
    expires_at: datetime | None


def job_json(job: Job, base_url: str) -> dict[str, Any]:
    base = f"{base_url.rstrip('/')}/v1/jobs/{job.id}"
    return {
        "id": job.id,
        "status": job.status.value,
        "task": job.task.value,
        "progress": job.percent,
        "queue_position": job.queue_position,
        "eta_seconds": job.eta_seconds,
        "waiting_for": job.waiting_for,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "expires_at": iso(job.expires_at),
        "outputs": [output.as_dict() for output in job.outputs],
        "error": {"code": job.error_code, "message": job.error_message}
        if job.status in (JobStatus.failed, JobStatus.canceled) else None,
        "n": job.request.n,
        "priority": job.priority,
        "urls": {"self": base, "cancel": f"{base}/cancel", "events": f"{base}/events"},
        "preview": job.preview_url,
    }


def job_list_json(page: JobPage, base_url: str, *, limit: int, offset: int) -> dict[str, Any]:
    return {"data": [job_json(job, base_url) for job in page.jobs], "total": page.total,
            "limit": limit, "offset": offset}


def upload_json(stored: StoredFile) -> dict[str, Any]:
    return {
        "id": stored.key, "url": stored.url, "content_type": stored.content_type,
        "width": stored.width, "height": stored.height, "size": stored.size,
        "expires_at": iso(stored.expires_at),
    }


def catalog_json(engine: Engine) -> dict[str, Any]:
    supported = engine.supported_tasks()
    return {
        "engine": engine.name,
        # The tasks are those of the definitions (GET /v1/tasks tells each one whole).
        "tasks": [{"id": task.value, "supported": task in supported, "summary": definition.summary}
                  for task, definition in TASKS.items()],
        "styles": [{"id": s.id, "name": s.name, "description": s.description}
                   for s in styles().values()],
        "room_types": [{"id": r.id, "name": r.name, "exterior": r.exterior}
                       for r in room_types().values()],
    }


# -- Server-Sent Events -------------------------------------------------------------------

def sse_json(event: str, data: dict[str, Any]) -> bytes:
    return sse(event, json.dumps(data, separators=(",", ":")))


def end_event(job: Job) -> bytes:
    return sse_json("end", {"id": job.id, "status": job.status.value})


class JobEvents:
    """What one stream sends for an update: `status` (the job as GET /v1/jobs/{id} answers it)
    when what it shows changed, `preview` when the job has a new preview, `token` with the new
    text of a chat job's answer (`{"id", "at", "text"}`: the answer from character `at` on; in
    order, their concatenation is the answer). Each is rendered once per change for all of the
    job's streams."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.last_seen: tuple[Any, ...] | None = None
        self.last_preview: str | None = None

    def __call__(self, update: JobUpdate) -> bytes:
        job, body = update.job, b""
        if update.text is not None:
            return update.rendered("native:token", lambda job: sse_json(
                "token", {"id": job.id, "at": update.text_at, "text": update.text}))
        state = (job.status, job.percent, job.queue_position, job.waiting_for, len(job.outputs))
        if state != self.last_seen:
            body += update.rendered(f"native:{self.base_url}",
                                    lambda job: sse_json("status", job_json(job, self.base_url)))
            self.last_seen = state
        if job.preview_url and job.preview_url != self.last_preview:
            body += update.rendered("native:preview", lambda job: sse_json(
                "preview", {"id": job.id, "url": job.preview_url, "progress": job.percent}))
            self.last_preview = job.preview_url
        return body

