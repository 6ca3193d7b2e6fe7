"""Replicate's requests (wire in): a prediction request's body checked against Replicate's schema,
its `version` resolved, its `input` translated into the canonical GenerationRequest; the
`Prefer: wait` header; a list's cursor and dates."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from roomrender.api.deps import describe_json_error
from roomrender.api.replicate.errors import BadRequest, VersionInvalid
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
from roomrender.api.replicate.presenters import file_url
from roomrender.canonical.models import GenerationRequest

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


def file_id_of(ref: str, base_url: str) -> str:
    """An input's reference, with this server's `/v1/files/{id}` URLs as their upload ids."""
    prefix = file_url(base_url, "")
    if not ref.startswith(prefix):
        return ref
    return ref[len(prefix):].split("?", 1)[0].split("#", 1)[0].split("/", 1)[0]


# -- lists ---------------------------------------------------------------------------------------

def from_cursor(cursor: str) -> tuple[float, str]:
    try:
        created_at, job_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return float(created_at), str(job_id)
    except (ValueError, TypeError):
        raise BadRequest("the cursor is not one this server gave") from None


def epoch(value: str | None, name: str) -> float | None:
    if not value:
        return None
    try:
        moment = parse_time(value)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date-time, like 2025-01-01T00:00:00Z") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
