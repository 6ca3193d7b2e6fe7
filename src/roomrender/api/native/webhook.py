"""The native webhook body, Standard Webhooks style: `{"type", "timestamp", "data": <the job as
GET /v1/jobs/{id} answers it>}`."""

from __future__ import annotations

from datetime import UTC, datetime

from roomrender.api.deps import iso
from roomrender.api.native.presenters import job_json
from roomrender.api.plug import WebhookContext, wire_json
from roomrender.canonical.models import Job
from roomrender.webhooks.bodies import BodyRenderer


def webhook_body(context: WebhookContext) -> BodyRenderer:
    def render(event: str, job: Job) -> str:
        return wire_json({"type": event, "timestamp": iso(datetime.now(UTC)),
                          "data": job_json(job, context.public_base_url)})

    return render
