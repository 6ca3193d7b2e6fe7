"""The native dialect (/v1): async jobs, uploads, SSE events, catalog."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.routing import Route

from roomrender.accounts.keys import ApiKey
from roomrender.api.auth import require_key
from roomrender.api.deps import IdempotencyKey, Key, iso, services
from roomrender.api.errors import COMMON_STATUSES, native_responses
from roomrender.api.guards import StreamSlots
from roomrender.api.plug import DialectPlug, WebhookContext, wire_json
from roomrender.api.reads import read
from roomrender.api.shutdown import shutting_down
from roomrender.api.sse import EventStream, StreamEndpoint, sse
from roomrender.canonical.artifacts import ArtifactKind
from roomrender.canonical.errors import ImageTooLarge
from roomrender.canonical.models import GenerationRequest, Job, JobStatus, Task
from roomrender.catalog import room_types, styles
from roomrender.jobs.service import MAX_PAGE_LIMIT, MAX_PAGE_OFFSET
from roomrender.jobs.watch import JobUpdate
from roomrender.webhooks.bodies import NATIVE, BodyRenderer

router = APIRouter(prefix="/v1", tags=["native"],
                   responses=native_responses(401, 404, *COMMON_STATUSES))
EVENT_KEEPALIVE_SECONDS = 15.0


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


@router.post("/jobs", status_code=202, response_model=JobOut, responses=native_responses(402, 409),
             summary="Submit a job; answers at once with its id and status URLs")
def create_job(
    request: Request,
    body: GenerationRequest,
    key: Key,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    svc = services(request)
    job = svc.jobs.submit(key, body, dialect="native", idempotency_key=idempotency_key)
    payload = job_json(job, svc.settings.public_base_url)
    return JSONResponse(payload, status_code=202, headers={"Location": payload["urls"]["self"]})


@router.get("/jobs", response_model=JobListOut, summary="The key's jobs, newest first")
def list_jobs(
    request: Request,
    key: Key,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_PAGE_OFFSET)] = 0,
    status: JobStatus | None = None,
) -> JSONResponse:
    svc = services(request)
    page = svc.jobs.list(key, limit=limit, offset=offset, status=status)
    base = svc.settings.public_base_url
    return JSONResponse({"data": [job_json(job, base) for job in page.jobs], "total": page.total,
                         "limit": limit, "offset": offset})


async def _job_response(request: Request, key: ApiKey, job_id: str) -> JSONResponse:
    svc = services(request)
    job = await read(svc.db, svc.jobs.get, key, job_id)
    return JSONResponse(job_json(job, svc.settings.public_base_url))


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A job's status, progress and outputs")
async def get_job(request: Request, job_id: str, key: Key) -> JSONResponse:
    return await _job_response(request, key, job_id)


async def _poll_job(request: Request) -> JSONResponse:
    return await _job_response(request, await require_key(request), request.path_params["job_id"])


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, responses=native_responses(409),
             summary="Cancel a queued job at once, a running one at its next step")
def cancel_job(request: Request, job_id: str, key: Key) -> JSONResponse:
    svc = services(request)
    return JSONResponse(job_json(svc.jobs.cancel(key, job_id), svc.settings.public_base_url))


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return sse(event, json.dumps(data, separators=(",", ":")))


@router.get("/jobs/{job_id}/events",
            summary="Server-Sent Events of the job's status and progress, and `preview` events (the URL of "
                    "a small JPEG of the picture forming, while it runs)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def job_events(request: Request, job_id: str, key: Key) -> EventStream:
    """Pushed as the job changes (no polling); `end` when it ends. (Answered by the leading
    route in FAST_ROUTES; this one documents it.)"""
    return await _job_events(request, key, job_id)


async def _open_job_events(request: Request) -> EventStream:
    return await _job_events(request, await require_key(request), request.path_params["job_id"])


async def _job_events(request: Request, key: ApiKey, job_id: str) -> EventStream:
    svc = services(request)
    watch = await svc.watchers.watch(key.id, job_id)  # 404 before the stream starts
    slots: StreamSlots = request.app.state.stream_slots
    try:
        slots.take(key.id)  # 429 past the key's open streams
    except Exception:
        watch.close()
        raise
    if shutting_down(request):
        watch.stop_serving()  # its first event, then: reconnect elsewhere
    return EventStream(watch, _NativeEvents(svc.settings.public_base_url),
                       lambda job: _sse("end", {"id": job.id, "status": job.status.value}),
                       keepalive_seconds=EVENT_KEEPALIVE_SECONDS,
                       on_close=lambda: slots.give_back(key.id))


class _NativeEvents:
    """What one stream sends for an update: `status` (the job as GET /v1/jobs/{id} answers it)
    when what it shows changed, `preview` when the job has a new preview. Each is rendered once
    per change for all of the job's streams."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.last_seen: tuple[Any, ...] | None = None
        self.last_preview: str | None = None

    def __call__(self, update: JobUpdate) -> bytes:
        job, body = update.job, b""
        state = (job.status, job.percent, job.queue_position, job.waiting_for, len(job.outputs))
        if state != self.last_seen:
            body += update.rendered(f"native:{self.base_url}",
                                    lambda job: _sse("status", job_json(job, self.base_url)))
            self.last_seen = state
        if job.preview_url and job.preview_url != self.last_preview:
            body += update.rendered("native:preview", lambda job: _sse(
                "preview", {"id": job.id, "url": job.preview_url, "progress": job.percent}))
            self.last_preview = job.preview_url
        return body


@router.post("/uploads", status_code=201, response_model=UploadOut,
             summary="Store an input image; use its id as `image`, `mask` or `reference_image`")
async def create_upload(request: Request, key: Key,
                        file: Annotated[UploadFile, File(description="a JPEG, PNG or WebP")]) -> JSONResponse:
    svc = services(request)
    limit = svc.settings.max_input_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"the upload is larger than {limit} bytes")
    stored = await run_in_threadpool(svc.jobs.store_upload, key, data, file.filename)
    return JSONResponse({
        "id": stored.key, "url": stored.url, "content_type": stored.content_type,
        "width": stored.width, "height": stored.height, "size": stored.size,
        "expires_at": iso(stored.expires_at),
    }, status_code=201)


@router.get("/catalog", summary="Tasks (and whether this server's engine runs them), styles, room types")
def catalog(request: Request) -> dict[str, Any]:
    engine = services(request).engine
    supported = engine.supported_tasks()
    return {
        "engine": engine.name,
        "tasks": [{"id": task.value, "supported": task in supported} for task in Task],
        "styles": [{"id": s.id, "name": s.name, "description": s.description}
                   for s in styles().values()],
        "room_types": [{"id": r.id, "name": r.name, "exterior": r.exterior}
                       for r in room_types().values()],
    }


@router.get("/account", summary="The calling key and its credits")
def account(request: Request, key: Key) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "prefix": key.prefix,
            "credits": services(request).jobs.credits(key)}


def webhook_body(context: WebhookContext) -> BodyRenderer:
    """Standard Webhooks style: `{"type", "timestamp", "data": <the job as GET /v1/jobs/{id}>}`."""

    def render(event: str, job: Job) -> str:
        return wire_json({"type": event, "timestamp": iso(datetime.now(UTC)),
                          "data": job_json(job, context.public_base_url)})

    return render


# Polling is the hottest call a client makes. This plain Starlette route answers it ahead of the
# FastAPI routes (same code, same errors): FastAPI's route matching and dependency solving cost
# several times the work itself there (measured: 430 µs against 90 µs per request). The FastAPI
# routes above document them in the OpenAPI schema.
FAST_ROUTES = [Route("/v1/jobs/{job_id}", _poll_job, methods=["GET"]),
               # An open stream holds a short call stack this way (see StreamEndpoint).
               Route("/v1/jobs/{job_id}/events", StreamEndpoint(_open_job_events), methods=["GET"])]

PLUG = DialectPlug(name=NATIVE, routers=[router],
                   leading_routes=FAST_ROUTES, webhook_body=webhook_body)
