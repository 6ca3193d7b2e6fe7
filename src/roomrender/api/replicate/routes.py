"""The Replicate-compatible dialect: Replicate's predictions API on the canonical job core, so an
app built on Replicate's clients (`replicate` for Python or Node) moves over by changing its base
URL and token.

`POST /v1/predictions` (or `/v1/models/{owner}/{name}/predictions`) with a model's `input` →
the prediction object; poll `GET /v1/predictions/{id}` (or send `Prefer: wait`, or read
`urls.stream`, or get webhooks) until `status` is `succeeded`, `failed` or `canceled`. Models are
data (`replicate_models.py`); shapes and errors are Replicate's (`replicate_wire.py`); models,
versions, files and the webhook secret are in `replicate_resources.py`. These paths share /v1
with the native API, which keeps its own (/v1/jobs, /v1/uploads, /v1/account, ...).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from datetime import UTC
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.routing import Route

from roomrender.accounts.keys import ApiKey
from roomrender.api.auth import require_key
from roomrender.api.deps import Key, describe_json_error, services
from roomrender.api.plug import DialectPlug, WebhookContext, wire_json
from roomrender.api.replicate.models import (
    ModelVersion,
    ReplicateModel,
    canonical_fields,
    checked_input,
    describe,
    invalid,
    model_catalog,
    parse_time,
    schema_errors,
    wire_name,
)
from roomrender.api.replicate.resources import file_id_of
from roomrender.api.replicate.resources import router as resources_router
from roomrender.api.replicate.wire import (
    DIALECT,
    BadRequest,
    VersionInvalid,
    output_items,
    prediction_json,
    replicate_error,
    replicate_responses,
)
from roomrender.api.shutdown import shutting_down
from roomrender.api.sse import EventStream, StreamEndpoint
from roomrender.canonical.errors import JobNotCancelable, NotFound, Unsupported
from roomrender.canonical.models import GenerationRequest, Job, JobStatus
from roomrender.jobs.watch import JobUpdate
from roomrender.webhooks.bodies import BodyRenderer

router = APIRouter(prefix="/v1", tags=["replicate"], responses=replicate_responses())

# Replicate's prediction request body (schemas_version_prediction_request); `webhook_completed`
# is the older way of asking for a webhook on completion, still sent by some clients.
BODY_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["input"],
    "properties": {
        "version": {"type": "string"},
        "input": {"type": "object"},
        "webhook": {"type": "string", "maxLength": 2048},
        "webhook_completed": {"type": ["string", "null"], "maxLength": 2048},
        "webhook_events_filter": {"type": "array", "items": {
            "type": "string", "enum": ["start", "output", "logs", "completed"]}},
        "stream": {"type": "boolean"},
    },
}
# webhook_events_filter → the canonical events it asks for.
EVENTS = {"start": ["job.started"], "output": ["job.succeeded"], "logs": ["job.progress"],
          "completed": ["job.succeeded", "job.failed", "job.canceled"]}
# Replicate's default: new outputs and completion.
DEFAULT_FILTER = ("output", "completed")
MAX_WAIT_SECONDS = 60
WAIT_POLL_SECONDS = 0.1
PAGE_SIZE = 100
STREAM_KEEPALIVE_SECONDS = 15.0
# A data: URI given as an input is echoed back in the prediction shortened to this.
ECHO_DATA_URI_CHARS = 64


# -- reading a request -----------------------------------------------------------------------

async def read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as broken:
        raise BadRequest(describe_json_error(broken)) from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    errors = schema_errors(BODY_SCHEMA, body)
    if errors:
        fields = []
        for error in errors:
            item = describe(error)
            item["field"] = item["field"].removeprefix("input").lstrip(".")
            fields.append(item)
        raise invalid(fields)
    return body


def wait_seconds(request: Request) -> int | None:
    """`Prefer: wait` (60 s) or `Prefer: wait=n` (n seconds, at most 60); other preferences are
    ignored, as RFC 7240 asks."""
    for preference in request.headers.get("prefer", "").split(","):
        found = re.fullmatch(r"\s*wait(?:\s*=\s*(\d+))?\s*", preference)
        if found:
            seconds = int(found.group(1)) if found.group(1) else MAX_WAIT_SECONDS
            return max(1, min(seconds, MAX_WAIT_SECONDS))
    return None


def resolve_version(reference: str) -> tuple[ReplicateModel, ModelVersion]:
    """`owner/name`, `owner/name:version` or a bare version id."""
    catalog = model_catalog()
    name, _, version_id = reference.partition(":")
    if "/" in name:
        model = catalog.find(name)
        if model is not None and not version_id:
            return model, model.latest
        version = model.version(version_id) if model is not None else None
        if model is not None and version is not None:
            return model, version
    else:
        found = catalog.by_version(reference)
        if found is not None:
            return found
    raise VersionInvalid("The specified version does not exist (or perhaps you don't have "
                         f"permission to use it?): {reference!r}. GET /v1/models lists the models "
                         "this server runs and their versions.")


def _echo(value: Any) -> Any:
    """An input value as the prediction gives it back: whole, but for a data: URI (the image is
    kept as the job's input file, not twice)."""
    if isinstance(value, str) and value.startswith("data:") and len(value) > ECHO_DATA_URI_CHARS:
        return f"{value[:ECHO_DATA_URI_CHARS]}... ({len(value)} characters; not kept by this server)"
    if isinstance(value, list):
        return [_echo(item) for item in value]
    return value


def to_request(model: ReplicateModel, version: ModelVersion, body: dict[str, Any],
               base_url: str) -> GenerationRequest:
    """The canonical request of a prediction request, for this model version."""
    given: dict[str, Any] = body["input"]
    values = checked_input(model, given)
    fields = canonical_fields(model, values, lambda ref: file_id_of(ref, base_url))
    webhook = body.get("webhook") or body.get("webhook_completed")
    if webhook:
        wanted = body.get("webhook_events_filter") or (
            ["completed"] if not body.get("webhook") else list(DEFAULT_FILTER))
        fields["webhook"] = webhook
        fields["webhook_events"] = sorted({event for name in wanted for event in EVENTS[name]})
    fields["client_data"] = {"model": model.ref, "version": version.id,
                             "input": {name: _echo(value) for name, value in given.items()}}
    try:
        return GenerationRequest(**fields)
    except ValidationError as refused:
        problems = []
        for item in refused.errors():
            path = [str(part) for part in item["loc"]]
            name = wire_name(model, path[0]) if path else ""
            problems.append({"type": str(item["type"]), "field": ".".join(["input", name, *path[1:]]),
                             "description": str(item["msg"])})
        raise invalid(problems) from None


# -- answering ---------------------------------------------------------------------------------

def _base(request: Request) -> str:
    return services(request).settings.public_base_url


async def _own_prediction(request: Request, key: ApiKey, prediction_id: str) -> Job:
    try:
        job = await run_in_threadpool(services(request).jobs.get, key, prediction_id)
    except NotFound:
        job = None
    if job is None or job.dialect != DIALECT:
        raise NotFound(f"no prediction {prediction_id!r} for this API token")
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
        deadline = time.monotonic() + wait
        while not job.status.is_terminal and time.monotonic() < deadline:
            await asyncio.sleep(WAIT_POLL_SECONDS)
            if await request.is_disconnected() or shutting_down(request):
                break  # shutting down: answer now with the prediction as it is (202)
            job = await run_in_threadpool(svc.jobs.get, key, job.id)
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
        job = await run_in_threadpool(svc.jobs.get, key, prediction_id)
    return JSONResponse(prediction_json(job, _base(request)))


def _cursor(last: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(last)).encode()).decode().rstrip("=")


def _from_cursor(cursor: str) -> tuple[float, str]:
    try:
        created_at, job_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return float(created_at), str(job_id)
    except (ValueError, TypeError):
        raise BadRequest("the cursor is not one this server gave") from None


def _epoch(value: str | None, name: str) -> float | None:
    if not value:
        return None
    try:
        moment = parse_time(value)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date-time, like 2025-01-01T00:00:00Z") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


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
    before = _from_cursor(cursor) if cursor else None
    until = _epoch(created_before, "created_before")
    if until is not None and (before is None or until <= before[0]):
        before = (until, "")
    after = _epoch(created_after, "created_after")
    svc = services(request)
    page = await run_in_threadpool(lambda: svc.jobs.list(
        key, limit=PAGE_SIZE, dialect=DIALECT, before=before, created_after=after))
    following = None
    if page.total > len(page.jobs) and page.last is not None:
        query = {"cursor": _cursor(page.last), **({"created_after": created_after} if after else {})}
        following = f"{base.rstrip('/')}/v1/predictions?{urlencode(query)}"
    return JSONResponse({"next": following, "previous": None,
                         "results": [prediction_json(job, base) for job in page.jobs]})


# -- urls.stream: Server-Sent Events ------------------------------------------------------------

def _event(number: int, name: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in (data.split("\n") or [""]))
    return f"id: {number}\nevent: {name}\n{lines}\n"


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
    if shutting_down(request):
        watch.stop_serving()  # its first events, then: reconnect elsewhere
    events = _PredictionEvents(_base(request))
    return EventStream(watch, events, events.end, keepalive_seconds=STREAM_KEEPALIVE_SECONDS,
                       farewell=b"retry: 1000\n: the server is shutting down; reconnect to follow "
                                b"the prediction\n\n")


class _PredictionEvents:
    """One stream's events: `logs` with the lines it has not sent yet (a progress line is new at
    every percent), then `output` per item, `error`, `done`; numbered."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.number = 0
        self.sent: set[str] = set()

    def __call__(self, update: JobUpdate) -> bytes:
        logs = update.rendered(f"replicate:logs:{self.base_url}",
                               lambda job: str(prediction_json(job, self.base_url)["logs"]))
        fresh = [line for line in logs.splitlines() if line not in self.sent]
        if not fresh:
            return b""
        self.number += 1
        self.sent.update(fresh)
        return _event(self.number, "logs", "\n".join(fresh)).encode()

    def end(self, job: Job) -> bytes:
        events = []
        for item in output_items(job):
            self.number += 1
            events.append(_event(self.number, "output", item if isinstance(item, str) else json.dumps(item)))
        if job.status == JobStatus.failed:
            self.number += 1
            events.append(_event(self.number, "error", json.dumps({"detail": job.error_message})))
        done = {} if job.status == JobStatus.succeeded else {"reason": job.status.value}
        events.append(_event(self.number + 1, "done", json.dumps(done)))
        return "".join(events).encode()


# -- the plug -------------------------------------------------------------------------------

def webhook_body(context: WebhookContext) -> BodyRenderer:
    """The prediction object, as GET /v1/predictions/{id} answers it, on every event."""
    return lambda _event, job: wire_json(prediction_json(job, context.public_base_url))


PLUG = DialectPlug(
    name=DIALECT, routers=[router, resources_router], render_error=replicate_error,
    leading_routes=[STREAM_ROUTE],
    # Replicate's paths under /v1; those this server does not serve (deployments, trainings,
    # ...) answer a 404 a Replicate client can read.
    error_prefixes=("/v1/predictions", "/v1/models", "/v1/files", "/v1/webhooks/default",
                    "/v1/deployments", "/v1/trainings", "/v1/collections", "/v1/hardware"),
    webhook_body=webhook_body,
)

