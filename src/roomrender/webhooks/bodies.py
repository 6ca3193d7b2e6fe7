"""The body of a webhook, in the dialect the job was submitted in.

native: Standard Webhooks style `{"type", "timestamp", "data": <the job as GET /v1/jobs/{id}>}`.
luw / spacely: the bare body their poll endpoint (`/v2/results`, `poll-result`) answers at that
moment, built by `roomrender.api.<dialect>:result_body(job, services)`.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from roomrender.jobs.models import TERMINAL_EVENTS, Job

if TYPE_CHECKING:
    from roomrender.services import Services

log = logging.getLogger("roomrender.webhooks")

# The events each foreign dialect sends: their services call back on success or failure only.
DIALECT_EVENTS: dict[str, frozenset[str]] = {
    "luw": frozenset({"job.succeeded", "job.failed"}),
    "spacely": frozenset({"job.succeeded", "job.failed"}),
}


def wanted_events(dialect: str, requested: list[str] | None) -> frozenset[str]:
    """The events a job of this dialect calls its webhook for."""
    if dialect in DIALECT_EVENTS:
        return DIALECT_EVENTS[dialect]
    return frozenset(requested if requested is not None else TERMINAL_EVENTS)


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def native_payload(event: str, job: Job, services: Services, now: datetime | None = None) -> str:
    from roomrender.api.native import job_json

    moment = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return _dumps({"type": event, "timestamp": moment,
                   "data": job_json(job, services.settings.public_base_url)})


def _dialect_renderer(dialect: str) -> Callable[[Job, Services], Any] | None:
    try:
        module = importlib.import_module(f"roomrender.api.{dialect}")
    except ImportError:
        return None
    return getattr(module, "result_body", None)


def payload(event: str, job: Job, services: Services) -> str:
    """The exact text POSTed for `event` of `job`."""
    renderer = _dialect_renderer(job.dialect) if job.dialect in DIALECT_EVENTS else None
    if renderer is None:
        return native_payload(event, job, services)
    body = renderer(job, services)
    if hasattr(body, "body"):  # a Response: send the bytes its poll endpoint would
        return bytes(body.body).decode("utf-8")
    return _dumps(body)
