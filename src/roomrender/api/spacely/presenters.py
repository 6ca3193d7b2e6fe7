"""Canonical things as Spacely answers them: a submitted job's refId, a job as poll-result's body
(also its webhook body), the accepted values at /api/v1/resources."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from roomrender.api.spacely.resources import resources
from roomrender.canonical.models import Job, JobStatus, Task


class SubmittedOut(BaseModel):
    data: str = Field(description="refId: pass it to poll-result", examples=["0b6a4c1e-..."])


class PollData(BaseModel):
    refId: str
    status: str = Field(description="processing, success or failed")
    result: list[str] = Field(description="result image URLs in order ([] until success)")
    progress: int = Field(description="percent done, 0..100")
    message: str | None = Field(None, description="why the generation failed")
    errorCode: str | None = None


class PollOut(BaseModel):
    data: PollData


# -- presenting: canonical → wire ---------------------------------------------------------

def result_body(job: Job) -> dict[str, Any]:
    """The poll-result body of a job (also the body of its Spacely webhook)."""
    data: dict[str, Any] = {"refId": job.id, "status": "processing", "result": [],
                            "progress": job.percent}
    if job.status == JobStatus.succeeded:
        data["status"] = "success"
        # Built when the job is presented, not stored: a signed object-store URL must be fresh.
        data["result"] = [output.url for output in job.outputs]
        if not job.outputs:
            data["message"] = "the results have expired and were deleted"
    elif job.status in (JobStatus.failed, JobStatus.canceled):
        data["status"] = "failed"
        data["message"] = job.error_message or "the generation failed"
        data["errorCode"] = job.error_code or "generation_failed"
    return {"data": data}


def resources_body(supported: frozenset[Task], standard_variants: int) -> dict[str, Any]:
    """/api/v1/resources: the accepted values, and which endpoints this server's engine runs."""
    raw = resources().raw
    endpoint_tasks = {
        "/api/v1/generate/standard": [model["task"] for model in raw["models"]],
        "/api/v1/generate/advance": [model["task"] for model in raw["models"]],
        "/api/v1/generate/style-transfer": [Task.style_transfer.value],
        "/api/v1/generate/empty-room": [Task.empty_room.value],
        "/api/v1/generate/color-transfer": [Task.recolor.value],
        "/api/v1/generate/color-transfer-exact": [Task.recolor.value],
        "/api/v1/generate/text-to-image": [Task.text_to_image.value],
        "/api/v1/generate/furniture-placement": [Task.place.value],
        "/api/v1/generate/decoration-placement": [Task.place.value],
        "/api/v1/generate/two-point-perspective": [Task.measure.value],
        "/api/v1/generate/one-point-perspective": [Task.measure.value],
    }
    return {"data": {
        "models": [{**model, "supported": Task(model["task"]) in supported}
                   for model in raw["models"]],
        "renovateTypes": raw["renovate_types"],
        "spaceTypes": raw["space_types"],
        "spaceStyles": raw["space_styles"],
        "spaceColors": raw["space_colors"],
        "materials": raw["materials"],
        "areas": raw["areas"],
        "endpoints": [{"path": path, "supported": any(Task(t) in supported for t in tasks)}
                      for path, tasks in endpoint_tasks.items()],
        "standardVariants": standard_variants,
    }}
