"""Replicate's wire shapes of canonical things: a job as a prediction, a model, a version, an
upload as a file, an error as a problem details body (`{"title", "detail", "status"}`)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from roomrender.api.deps import iso
from roomrender.api.errors import HttpError, http_status
from roomrender.api.replicate.models import (
    InputInvalid,
    ModelVersion,
    ReplicateModel,
    model_catalog,
    unused_inputs,
)
from roomrender.canonical.errors import (
    ImageTooLarge,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    RoomrenderError,
    Unauthorized,
    Unsupported,
)
from roomrender.canonical.models import Job, JobStatus
from roomrender.storage.files import StoredFile

DIALECT = "replicate"
STATUSES = {JobStatus.queued: "starting", JobStatus.running: "processing",
            JobStatus.succeeded: "succeeded", JobStatus.failed: "failed",
            JobStatus.canceled: "canceled"}
PROGRESS_BAR = 10


# -- errors ----------------------------------------------------------------------------------

class VersionInvalid(HttpError):
    code = "invalid_version"
    status = 422


class BadRequest(HttpError):
    code = "bad_request"
    status = 400


TITLES = {400: "Bad request", 401: "Unauthenticated", 402: "Insufficient credit",
          403: "Forbidden", 404: "Not found", 405: "Method not allowed", 409: "Conflict",
          413: "Content Too Large", 422: "Unprocessable Entity", 429: "Request was throttled",
          500: "Internal server error"}
TITLES_BY_CODE = {"input_invalid": "Input validation failed",
                  "invalid_version": "Invalid version or not permitted"}


class ProblemOut(BaseModel):
    """Replicate's error body (problem details)."""

    title: str
    detail: str
    status: int


def replicate_responses() -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of every Replicate route: the error statuses they send, as problems."""
    described = {400: "The body is not JSON, or not an object", 401: "Token missing or not valid",
                 402: "Not enough credits", 404: "No such prediction, model, version or file",
                 413: "The request body or an image is too large",
                 422: "Input or version not valid, or a task this server's engine cannot run",
                 429: "Past the token's rate limit (`Retry-After`)", 500: "Server error",
                 503: "Storage or database unavailable for now (`Retry-After`)"}
    return {status: {"model": ProblemOut, "description": text} for status, text in described.items()}


def replicate_status(error: RoomrenderError) -> int:
    """Replicate answers what a client can fix in a request's content with 422."""
    if isinstance(error, HttpError):
        return error.status
    if isinstance(error, Unauthorized):
        return 401
    if isinstance(error, InsufficientCredits):
        return 402
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, ImageTooLarge):
        return 413
    if isinstance(error, InvalidRequest | Unsupported):
        return 422
    return http_status(error)


def replicate_error(error: RoomrenderError) -> Response:
    status = replicate_status(error)
    title = TITLES_BY_CODE.get(error.code)
    if title is None and isinstance(error, Unsupported):
        title = "Not supported by this server"
    body: dict[str, Any] = {"title": title or TITLES.get(status, "Error"), "detail": error.message,
                            "status": status}
    if isinstance(error, InputInvalid):
        body["invalid_fields"] = error.details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers,
                        media_type="application/problem+json")


# -- predictions ---------------------------------------------------------------------------------

def job_model(job: Job) -> tuple[ReplicateModel | None, str, str]:
    """The job's model (if this server still has it), its `owner/name` and version id."""
    data = job.request.client_data or {}
    catalog = model_catalog()
    ref = str(data.get("model") or f"roomrender/{job.task.value.replace('_', '-')}")
    model = catalog.find(ref)
    version = str(data.get("version") or (model.latest.id if model else ""))
    return model, ref, version


def _output(job: Job, kind: str) -> Any:
    if kind == "image":
        images = [output.url for output in job.outputs if output.label is None]
        return images[0] if images else None
    if kind == "segments":
        return [{"label": output.label, "mask": output.url} for output in job.outputs]
    return [output.url for output in job.outputs]


def progress_line(percent: int) -> str:
    """A tqdm-style line, as Cog models print them (clients parse the progress from it)."""
    filled = PROGRESS_BAR * percent // 100
    return f"{percent:3d}%|{'█' * filled}{' ' * (PROGRESS_BAR - filled)}| {percent}/100"


def logs(job: Job, model: ReplicateModel | None) -> str:
    given = (job.request.client_data or {}).get("input") or {}
    lines = unused_inputs(model, given) if model is not None else []
    if job.status == JobStatus.queued:
        lines.append(f"waiting in the queue (position {job.queue_position})"
                     if job.queue_position else "waiting in the queue")
        if job.waiting_for:
            lines.append(f"waiting for {job.waiting_for}")
    if job.started_at is not None:
        lines.append(progress_line(job.percent))
    if job.status == JobStatus.failed:
        lines.append(f"failed: {job.error_message or job.error_code}")
    if job.status == JobStatus.canceled:
        lines.append("canceled")
    return "\n".join(lines) + ("\n" if lines else "")


def prediction_json(job: Job, base_url: str, *, waited_out: bool = False) -> dict[str, Any]:
    """A job as Replicate's prediction object. `waited_out`: answered at the end of a
    `Prefer: wait` that the job outlasted, which Replicate answers as "starting"."""
    model, ref, version = job_model(job)
    base = f"{base_url.rstrip('/')}/v1/predictions/{job.id}"
    succeeded = job.status == JobStatus.succeeded
    status = "starting" if waited_out and not job.status.is_terminal else STATUSES[job.status]
    metrics: dict[str, float] = {}
    if job.status.is_terminal and job.finished_at is not None:
        if job.started_at is not None:
            metrics["predict_time"] = round((job.finished_at - job.started_at).total_seconds(), 6)
        metrics["total_time"] = round((job.finished_at - job.created_at).total_seconds(), 6)
    prediction: dict[str, Any] = {
        "id": job.id,
        "model": ref,
        "version": version,
        "input": (job.request.client_data or {}).get("input", {}),
        "logs": logs(job, model),
        "output": _output(job, model.output if model else "images") if succeeded and job.outputs else None,
        "data_removed": succeeded and not job.outputs,
        "error": (job.error_message or "the prediction failed") if job.status == JobStatus.failed else None,
        "status": status,
        "source": "api",
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.finished_at) if job.status.is_terminal else None,
        "urls": {"get": base, "cancel": f"{base}/cancel", "stream": f"{base}/stream"},
        "metrics": metrics,
    }
    # Replicate's schema has these as date-times, not nullable: absent until they happen.
    return {name: value for name, value in prediction.items()
            if value is not None or name not in ("started_at", "completed_at")}


def output_items(job: Job) -> list[Any]:
    """The prediction's output as a stream sends it: one `output` event per item."""
    model, _, _ = job_model(job)
    output = _output(job, model.output if model else "images")
    if output is None:
        return []
    return list(output) if isinstance(output, list) else [output]


# -- models, versions, files ------------------------------------------------------------------------

def version_json(version: ModelVersion) -> dict[str, Any]:
    return {"id": version.id, "created_at": version.created_at,
            "cog_version": model_catalog().cog_version, "openapi_schema": version.openapi_schema}


def model_json(model: ReplicateModel, base_url: str) -> dict[str, Any]:
    return {
        "url": f"{base_url.rstrip('/')}/v1/models/{model.ref}",
        "owner": model.owner,
        "name": model.name,
        "description": model.description,
        "visibility": "public",
        "is_official": model.owner == "roomrender",
        "github_url": None,
        "paper_url": None,
        "license_url": None,
        # roomrender keeps no count of runs per model.
        "run_count": 0,
        "cover_image_url": None,
        "default_example": None,
        "latest_version": version_json(model.latest),
    }


def file_url(base_url: str, file_id: str) -> str:
    return f"{base_url.rstrip('/')}/v1/files/{file_id}"


def file_json(stored: StoredFile, sha256: str, base_url: str) -> dict[str, Any]:
    return {
        "id": stored.key,
        "name": stored.name or stored.key,
        "content_type": stored.content_type,
        "size": stored.size,
        "etag": sha256,
        "checksums": {"sha256": sha256},
        "metadata": {},
        "created_at": iso(stored.created_at),
        "expires_at": iso(stored.expires_at),
        "urls": {"get": file_url(base_url, stored.key)},
    }
