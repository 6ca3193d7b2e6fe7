"""The Replicate-compatible dialect's prediction routes: Replicate's predictions API on the
canonical job core, so an app built on Replicate's clients (`replicate` for Python or Node) moves
over by changing its base URL and token.

`POST /v1/predictions` (or `/v1/models/{owner}/{name}/predictions`) with a model's `input` →
the prediction object; poll `GET /v1/predictions/{id}` (or send `Prefer: wait`, or read
`urls.stream`, or get webhooks) until `status` is `succeeded`, `failed` or `canceled`. Requests
are read in `requests.py` (models are data: `models.py`), answers rendered in `presenters.py`,
errors in `errors.py`; models, versions, files and the webhook secret are in `resources.py`.
These paths share /v1 with the native API, which keeps its own (/v1/jobs, /v1/uploads, ...).
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from roomrender.accounts.keys import ApiKey
from roomrender.api.auth import require_key
from roomrender.api.deps import Key, services
from roomrender.api.guards import StreamSlots
from roomrender.api.reads import read_job
from roomrender.api.replicate.errors import replicate_responses
from roomrender.api.replicate.models import ModelVersion, ReplicateModel, invalid, model_catalog
from roomrender.api.replicate.presenters import DIALECT, PredictionEvents, cursor_of, prediction_json
from roomrender.api.replicate.requests import (
    epoch,
    from_cursor,
    read_body,
    resolve_version,
    to_request,
    wait_seconds,
)
from roomrender.api.shutdown import shutting_down
from roomrender.api.sse import EventStream, StreamEndpoint
from roomrender.canonical.errors import JobNotCancelable, NotFound, Unsupported
from roomrender.canonical.models import Job

router = APIRouter(prefix="/v1", tags=["replicate"], responses=replicate_responses())

PAGE_SIZE = 100
STREAM_KEEPALIVE_SECONDS = 15.0
# While `Prefer: wait` holds an answer, how often it looks whether the client has left.
WAIT_CHECK_SECONDS = 1.0


def _base(request: Request) -> str:
    return services(request).settings.public_base_url


async def _own_prediction(request: Request, key: ApiKey, prediction_id: str) -> Job:
    try:
        job = await read_job(services(request), key, prediction_id)
    except NotFound:
        job = None
    if job is None or job.dialect != DIALECT:
        raise NotFound(f"no prediction {prediction_id!r} for this API token")
    return job


async def _wait(request: Request, key: ApiKey, job: Job, seconds: int) -> Job:
    """The job once it ends, or as it is when `seconds` ran out, the client left or the server
    began to shut down. It waits on the change feed (the job's watch): no read while the job
    does not change."""
    deadline = time.monotonic() + seconds
    watch = await services(request).watchers.watch(key.id, job.id)
    try:
        if shutting_down(request):
            watch.stop_serving()
        while not job.status.is_terminal:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            update = await watch.next(min(left, WAIT_CHECK_SECONDS))
            if update is not None:
                job = update.job
            elif watch.draining or await request.is_disconnected():
                break  # shutting down: answer now with the prediction as it is (202)
    finally:
        watch.close()
    return job


async def create(request: Request, key: ApiKey, model: ReplicateModel, version: ModelVersion,
                 body: dict[str, Any]) -> JSONResponse:
    if request.headers.get("cancel-after"):
        raise Unsupported("the Cancel-After header is not supported by this server: cancel a "
                          "prediction with POST /v1/predictions/{id}/cancel")
    svc = services(request)
    generation = to_request(model, version, body, _base(request))
    job = await run_in_threadpool(svc.jobs.submit, key, generation, dialect=DIALECT)
    wait = wait_seconds(request)
    headers = {"Preference-Applied": f"wait={wait}"} if wait else {}
    if wait:
        job = await _wait(request, key, job, wait)
    waited_out = bool(wait) and not job.status.is_terminal
    payload = prediction_json(job, _base(request), waited_out=waited_out)
    headers["Location"] = payload["urls"]["get"]
    return JSONResponse(payload, status_code=202 if waited_out else 201, headers=headers)


@router.post("/predictions", status_code=201,
             responses={202: {"description": "`Prefer: wait` ran out: the prediction, still starting"}},
             summary="Create a prediction: `version` is `owner/name`, `owner/name:version` or a "
                     "version id; `Prefer: wait` holds the answer up to 60 s")
async def create_prediction(request: Request, key: Key) -> JSONResponse:
    body = await read_body(request)
    if not body.get("version"):
        raise invalid([{"type": "required", "field": "", "description": "version is required"}])
    model, version = resolve_version(str(body["version"]))
    return await create(request, key, model, version, body)


@router.post("/models/{owner}/{name}/predictions", status_code=201,
             responses={202: {"description": "`Prefer: wait` ran out: the prediction, still starting"}},
             summary="Create a prediction of a model's latest version")
async def create_model_prediction(request: Request, owner: str, name: str, key: Key) -> JSONResponse:
    body = await read_body(request)
    if "version" in body:
        raise invalid([{"type": "additional_property_not_allowed", "field": "",
                        "description": "Additional property version is not allowed"}])
    model = model_catalog().find(f"{owner}/{name}")
    if model is None:
        raise NotFound(f"model {owner}/{name} not found; GET /v1/models lists this server's models")
    return await create(request, key, model, model.latest, body)


@router.get("/predictions/{prediction_id}", summary="A prediction's state, logs and output")
async def get_prediction(request: Request, prediction_id: str, key: Key) -> JSONResponse:
    job = await _own_prediction(request, key, prediction_id)
    return JSONResponse(prediction_json(job, _base(request)))


@router.post("/predictions/{prediction_id}/cancel",
             summary="Cancel a prediction (at once when queued, at its next step when running)")
async def cancel_prediction(request: Request, prediction_id: str, key: Key) -> JSONResponse:
    await _own_prediction(request, key, prediction_id)
    svc = services(request)
    try:
        job = await run_in_threadpool(svc.jobs.cancel, key, prediction_id)
    except JobNotCancelable:
        # A finished prediction is answered as it is, as Replicate does.
        job = await read_job(svc, key, prediction_id)
    return JSONResponse(prediction_json(job, _base(request)))


@router.get("/predictions", summary="The token's predictions, newest first, 100 a page")
async def list_predictions(
    request: Request, key: Key,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    created_after: Annotated[str | None, Query()] = None,
    created_before: Annotated[str | None, Query()] = None,
    source: Annotated[str | None, Query(pattern="^web$")] = None,
) -> JSONResponse:
    base = _base(request)
    if source == "web":
        # Every prediction of this server is made through its API.
        return JSONResponse({"next": None, "previous": None, "results": []})
    before = from_cursor(cursor) if cursor else None
    until = epoch(created_before, "created_before")
    if until is not None and (before is None or until <= before[0]):
        before = (until, "")
    after = epoch(created_after, "created_after")
    svc = services(request)
    page = await run_in_threadpool(lambda: svc.jobs.list(
        key, limit=PAGE_SIZE, dialect=DIALECT, before=before, created_after=after))
    following = None
    if page.total > len(page.jobs) and page.last is not None:
        query = {"cursor": cursor_of(page.last), **({"created_after": created_after} if after else {})}
        following = f"{base.rstrip('/')}/v1/predictions?{urlencode(query)}"
    return JSONResponse({"next": following, "previous": None,
                         "results": [prediction_json(job, base) for job in page.jobs]})


# -- urls.stream: Server-Sent Events ------------------------------------------------------------

@router.get("/predictions/{prediction_id}/stream",
            summary="Server-Sent Events of a prediction: logs, output, error, done",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream_prediction(request: Request, prediction_id: str, key: Key) -> EventStream:
    """Pushed as the prediction changes (no polling). (Answered by the leading route STREAM_ROUTE;
    this one documents it.)"""
    return await _prediction_stream(request, key, prediction_id)


async def _open_prediction_stream(request: Request) -> EventStream:
    return await _prediction_stream(request, await require_key(request),
                                    request.path_params["prediction_id"])


# An open stream holds a short call stack this way (see StreamEndpoint).
STREAM_ROUTE = Route("/v1/predictions/{prediction_id}/stream",
                     StreamEndpoint(_open_prediction_stream), methods=["GET"])


async def _prediction_stream(request: Request, key: ApiKey, prediction_id: str) -> EventStream:
    svc = services(request)
    try:
        watch = await svc.watchers.watch(key.id, prediction_id)
    except NotFound:
        watch = None
    if watch is None or watch.job is None or watch.job.dialect != DIALECT:
        if watch is not None:
            watch.close()
        raise NotFound(f"no prediction {prediction_id!r} for this API token")
    slots: StreamSlots = request.app.state.stream_slots
    try:
        slots.take(key.id)  # one cap per key for every dialect's streams: 429 past it
    except Exception:
        watch.close()
        raise
    if shutting_down(request):
        watch.stop_serving()  # its first events, then: reconnect elsewhere
    events = PredictionEvents(_base(request))
    stream = EventStream(watch, events, events.end, keepalive_seconds=STREAM_KEEPALIVE_SECONDS,
                       on_close=lambda: slots.give_back(key.id, stream.revoke),
                       farewell=b"retry: 1000\n: the server is shutting down; reconnect to follow "
                                b"the prediction\n\n")
    slots.follow(key.id, stream.revoke)  # closed at once if the key is revoked
    return stream
