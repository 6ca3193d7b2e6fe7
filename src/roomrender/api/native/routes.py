"""The native dialect's routes (/v1): async jobs, uploads, SSE events, catalog. Its requests are
the canonical ones (`GenerationRequest` is its body); answers are rendered in `presenters.py`;
its error shape is the server's default (`api.errors.native_error`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from roomrender.accounts.keys import ApiKey
from roomrender.api.auth import require_key
from roomrender.api.deps import IdempotencyKey, Key, services
from roomrender.api.errors import COMMON_STATUSES, native_responses
from roomrender.api.guards import StreamSlots
from roomrender.api.native.presenters import (
    JobEvents,
    JobListOut,
    JobOut,
    UploadOut,
    catalog_json,
    end_event,
    job_json,
    job_list_json,
    upload_json,
)
from roomrender.api.reads import read_job
from roomrender.api.shutdown import shutting_down
from roomrender.api.sse import EventStream, StreamEndpoint
from roomrender.canonical.errors import ImageTooLarge
from roomrender.canonical.models import GenerationRequest, JobStatus
from roomrender.images import megabytes
from roomrender.jobs.service import MAX_PAGE_LIMIT, MAX_PAGE_OFFSET

router = APIRouter(prefix="/v1", tags=["native"],
                   responses=native_responses(401, 404, *COMMON_STATUSES))
EVENT_KEEPALIVE_SECONDS = 15.0


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
    return JSONResponse(job_list_json(page, svc.settings.public_base_url, limit=limit, offset=offset))


async def _job_response(request: Request, key: ApiKey, job_id: str) -> JSONResponse:
    svc = services(request)
    job = await read_job(svc, key, job_id)
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


@router.get("/jobs/{job_id}/events",
            summary="Server-Sent Events of the job's status and progress, and `preview` events (the URL of "
                    "a small JPEG of the picture forming, while it runs), `token` events (a chat job's answer "
                    "as it forms: `{id, at, text}`, the new text)",
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
    stream = EventStream(watch, JobEvents(svc.settings.public_base_url), end_event,
                       keepalive_seconds=EVENT_KEEPALIVE_SECONDS,
                       on_close=lambda: slots.give_back(key.id, stream.revoke))
    slots.follow(key.id, stream.revoke)  # closed at once if the key is revoked
    return stream


@router.post("/uploads", status_code=201, response_model=UploadOut,
             summary="Store an input image; use its id as `image`, `mask` or `reference_image`")
async def create_upload(request: Request, key: Key,
                        file: Annotated[UploadFile, File(description="a JPEG, PNG or WebP")]) -> JSONResponse:
    svc = services(request)
    limit = svc.settings.max_input_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"the upload is larger than {megabytes(limit)}")
    stored = await run_in_threadpool(svc.jobs.store_upload, key, data, file.filename)
    return JSONResponse(upload_json(stored), status_code=201)


@router.get("/catalog", summary="Tasks (and whether this server's engine runs them), styles, room types")
def catalog(request: Request) -> dict[str, Any]:
    return catalog_json(services(request).engine)


@router.get("/account", summary="The calling key and its credits")
def account(request: Request, key: Key) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "prefix": key.prefix,
            "credits": services(request).jobs.credits(key)}


# Polling is the hottest call a client makes. This plain Starlette route answers it ahead of the
# FastAPI routes (same code, same errors): FastAPI's route matching and dependency solving cost
# several times the work itself there (measured: 430 µs against 90 µs per request). The FastAPI
# routes above document them in the OpenAPI schema.
FAST_ROUTES = [Route("/v1/jobs/{job_id}", _poll_job, methods=["GET"]),
               # An open stream holds a short call stack this way (see StreamEndpoint).
               Route("/v1/jobs/{job_id}/events", StreamEndpoint(_open_job_events), methods=["GET"])]
