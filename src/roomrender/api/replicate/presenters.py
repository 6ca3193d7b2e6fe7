"""Canonical things as Replicate answers them: a job as a prediction (its output the URL of each
artifact, whatever its kind), its logs and its stream's events; a model, a version, an upload as a
file; a page's cursor."""

from __future__ import annotations

import base64
import json
from typing import Any

from roomrender.api.deps import iso
from roomrender.api.replicate.models import (
    ModelVersion,
    ReplicateModel,
    model_catalog,
    unused_inputs,
)
from roomrender.canonical.models import Job, JobStatus
from roomrender.jobs.watch import JobUpdate
from roomrender.storage.files import StoredFile

# The name this dialect's jobs carry.
DIALECT = "replicate"
STATUSES = {JobStatus.queued: "starting", JobStatus.running: "processing",
            JobStatus.succeeded: "succeeded", JobStatus.failed: "failed",
            JobStatus.canceled: "canceled"}
PROGRESS_BAR = 10


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
    """A finished job's `output` for its model's output kind: `image`, one file (its URL, a
    string, whatever the artifact: an image, an MP4, an SVG...); `segments`, `{label, mask}`s;
    else every file's URL, a list."""
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


def cursor_of(last: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(last)).encode()).decode().rstrip("=")


# -- urls.stream: Server-Sent Events ------------------------------------------------------------

def _event(number: int, name: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in (data.split("\n") or [""]))
    return f"id: {number}\nevent: {name}\n{lines}\n"


class PredictionEvents:
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
