"""Webhook secrets and delivery history, in the native dialect (/v1)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel

from roomrender.api.deps import Key, iso, services
from roomrender.api.errors import COMMON_STATUSES, native_responses
from roomrender.api.native.presenters import JobOut
from roomrender.webhooks.signing import SigningSecrets

router = APIRouter(prefix="/v1", tags=["webhooks"],
                   responses=native_responses(401, 404, *COMMON_STATUSES))
# What roomrender POSTs to a client's URL, for the OpenAPI document's `webhooks` section.
callbacks = APIRouter(tags=["webhooks"])
MAX_OVERLAP_SECONDS = 7 * 24 * 3600


class SecretOut(BaseModel):
    secret: str
    previous_secret_expires_at: str | None


class AttemptOut(BaseModel):
    attempt: int
    at: str
    duration_ms: int
    status_code: int | None
    error: str | None
    outcome: str


class MessageOut(BaseModel):
    id: str
    event: str
    url: str
    status: str
    attempts: list[AttemptOut]
    next_attempt_at: str | None
    created_at: str
    delivered_at: str | None
    last_error: str | None


class MessageListOut(BaseModel):
    data: list[MessageOut]


def _secret_json(secrets: SigningSecrets) -> dict[str, Any]:
    previous = secrets.previous_expires_at if len(secrets.active()) > 1 else None
    return {"secret": secrets.current, "previous_secret_expires_at": iso(previous)}


@router.get("/webhooks/secret", response_model=SecretOut,
            summary="The key's webhook signing secret (Standard Webhooks, whsec_...)")
def get_secret(request: Request, key: Key) -> dict[str, Any]:
    return _secret_json(services(request).webhook_secrets.get(key.id))


@router.post("/webhooks/secret/rotate", response_model=SecretOut,
             summary="A new signing secret; the old one also signs until the overlap ends")
def rotate_secret(
    request: Request, key: Key,
    overlap_seconds: Annotated[float | None, Query(ge=0, le=MAX_OVERLAP_SECONDS)] = None,
) -> dict[str, Any]:
    return _secret_json(services(request).webhook_secrets.rotate(key.id, overlap_seconds))


@router.get("/jobs/{job_id}/webhooks", response_model=MessageListOut,
            summary="The job's webhook events and every delivery attempt")
def job_webhooks(request: Request, job_id: str, key: Key) -> dict[str, Any]:
    svc = services(request)
    svc.jobs.get(key, job_id)  # another key's job is not found
    data = []
    for item in svc.outbox.history(job_id):
        message = item["message"]
        data.append({
            "id": message["id"], "event": message["event"], "url": message["url"],
            "status": message["status"],
            "attempts": [{"attempt": a["attempt"], "at": iso(a["started_at"]),
                          "duration_ms": a["duration_ms"], "status_code": a["status_code"],
                          "error": a["error"], "outcome": a["outcome"]} for a in item["attempts"]],
            "next_attempt_at": iso(message["next_attempt_at"]) if message["status"] == "pending"
            else None,
            "created_at": iso(message["created_at"]),
            "delivered_at": iso(message["delivered_at"]),
            "last_error": message["last_error"],
        })
    return {"data": data}


class WebhookEventOut(BaseModel):
    type: Literal["job.started", "job.progress", "job.succeeded", "job.failed", "job.canceled"]
    timestamp: str
    data: JobOut


@callbacks.post("job-event", summary="A native job's event, POSTed to its `webhook` URL")
def job_event(
    body: WebhookEventOut,
    webhook_id: Annotated[str, Header(description="the same on every retry: de-duplicate on it")],
    webhook_timestamp: Annotated[str, Header(description="epoch seconds of this attempt")],
    webhook_signature: Annotated[str, Header(
        description="`v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`, two during a rotation")],
) -> None:
    """Answer 2xx to acknowledge. 429 and 5xx (and no answer) are retried; other codes are not."""
