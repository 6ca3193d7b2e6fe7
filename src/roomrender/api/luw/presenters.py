"""Canonical things as Luw answers them: a job as /v2/results' body (progress, failure, output),
a key's credits, the styles and materials lists."""

from __future__ import annotations

import base64
from typing import Any

from roomrender.api.deps import iso
from roomrender.api.luw.params import luw_data
from roomrender.canonical.models import Job, JobStatus, Task
from roomrender.storage import FileMissing
from roomrender.storage.base import Storage

# What /v2/credits reports as the balance of a key with unlimited credits (a number, so that
# clients comparing or subtracting keep working): the largest 32-bit signed integer.
UNLIMITED_CREDITS = 2**31 - 1
THUMB_SIZE = 160
IMAGE_SIZE = 512


def _progress(job: Job, state: str) -> dict[str, Any]:
    return {"started_at": iso(job.started_at or job.created_at, whole_seconds=True), "state": state,
            "percent": job.percent}


def _failure(job: Job, state: str, message: str, code: str) -> dict[str, Any]:
    return {"status": False, "error": message, "response": code, "progress": _progress(job, state)}


def result_body(job: Job, storage: Storage) -> dict[str, Any]:
    """What /v2/results answers for `job` now (also the body of Luw webhooks). A finished job's
    `output` is its file's URL whatever its kind (an image, an MP4, a GLB, an SVG...), a list when
    several were asked; segments are `{label, mask}` with the mask inline."""
    if not job.status.is_terminal:
        return {"status": True, "progress": _progress(job, "processing"), "processing": True,
                "processing_url": job.id}
    if job.status == JobStatus.failed:
        return _failure(job, "failed", job.error_message or "the generation failed",
                        job.error_code or "generation_failed")
    if job.status == JobStatus.canceled:
        return _failure(job, "canceled", job.error_message or "the job was canceled",
                        job.error_code or "canceled")
    expired = _failure(job, "expired", "the results of this job have expired", "expired")
    if not job.outputs:
        return expired
    if job.task == Task.segment or any(output.label is not None for output in job.outputs):
        segments = []
        for output in job.outputs:
            try:
                mask = storage.get(output.key)
            except FileMissing:
                return expired
            segments.append({"label": output.label, "mask": base64.b64encode(mask).decode("ascii"),
                             "score": None})
        return {"status": True, "output": segments}
    urls = [output.url for output in job.outputs]
    return {"status": True, "output": urls[0] if len(urls) == 1 and job.request.n == 1 else urls}


def credits_body(balance: dict[str, Any]) -> dict[str, Any]:
    """A key's credits (JobService.credits) as /v2/credits answers them."""
    unlimited = balance["granted"] is None
    return {
        "credits": {
            "available": UNLIMITED_CREDITS if unlimited else balance["available"],
            "used": balance["used"],
            "purchased": UNLIMITED_CREDITS if unlimited else balance["granted"],
        },
        "subscription": {"plan": "unlimited" if unlimited else "credits", "unlimited": unlimited,
                         "reserved": balance["reserved"]},
    }


def swatch_url(base_url: str, kind: str, item: str, size: int) -> str:
    return f"{base_url.rstrip('/')}/v2/swatches/{kind}/{item}.png?size={size}"


def styles_body(base_url: str) -> list[dict[str, Any]]:
    return [
        {"name": entry["name"], "description": entry["description"],
         "thumb_image": swatch_url(base_url, "styles", entry["id"], THUMB_SIZE),
         "image": swatch_url(base_url, "styles", entry["id"], IMAGE_SIZE)}
        for entry in luw_data()["styles"]
    ]


def materials_body(base_url: str) -> dict[str, Any]:
    return {"status": True, "materials": [
        {"id": entry["id"], "prompt_type": entry["prompt_type"], "title": entry["title"],
         "extra": entry["extra"],
         "image": swatch_url(base_url, "materials", str(entry["id"]), IMAGE_SIZE),
         "thumb": swatch_url(base_url, "materials", str(entry["id"]), THUMB_SIZE)}
        for entry in luw_data()["materials"]
    ]}
