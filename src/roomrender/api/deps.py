"""What every route of every dialect reads from its request, typed, in one place: the process's
services, the caller's key, the Idempotency-Key header; and the wire helpers they share
(timestamps, validation errors as one sentence)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, Header, Request
from sqlalchemy import Engine as Database

from roomrender.accounts.keys import ApiKey, KeyStore
from roomrender.accounts.teams import TeamStore
from roomrender.api.auth import require_key
from roomrender.config import Settings
from roomrender.engines.base import Engine
from roomrender.jobs.service import JobService
from roomrender.jobs.watch import JobWatchers
from roomrender.storage.base import Storage
from roomrender.storage.files import FileStore
from roomrender.webhooks.outbox import Outbox
from roomrender.webhooks.signing import SecretStore
from roomrender.workspace.boards import BoardStore
from roomrender.workspace.personas import PersonaStore


class Services(Protocol):
    """What the dialects' routes use of the process's services (`roomrender.services.Services`
    has them; declared here so the wiring may import the dialects, not the other way round)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def jobs(self) -> JobService: ...
    @property
    def watchers(self) -> JobWatchers: ...
    @property
    def keys(self) -> KeyStore: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def files(self) -> FileStore: ...
    @property
    def storage(self) -> Storage: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def webhook_secrets(self) -> SecretStore: ...
    @property
    def teams(self) -> TeamStore: ...
    @property
    def boards(self) -> BoardStore: ...
    @property
    def personas(self) -> PersonaStore: ...


# The calling key (401 in the dialect's shape when missing or not valid).
Key = Annotated[ApiKey, Depends(require_key)]
IDEMPOTENCY_KEY_MAX = 255
IdempotencyKey = Annotated[str | None, Header(max_length=IDEMPOTENCY_KEY_MAX,
                                              description="repeats answer the first job")]


def services(request: Request) -> Services:
    """The process's services (`app.state.services`, set by `create_app`)."""
    found: Services = request.app.state.services
    return found


def iso(value: datetime | float | None, *, whole_seconds: bool = False) -> str | None:
    """A UTC datetime or epoch as ISO 8601 with a `Z` (`whole_seconds`: no fraction)."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    if whole_seconds:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat().replace("+00:00", "Z")


def describe_validation_errors(errors: Sequence[dict[str, Any]]) -> str:
    """pydantic's errors as one sentence: `field: message; other: message`."""
    parts = []
    for item in errors:
        location = ".".join(str(part) for part in item.get("loc", ())
                            if part not in ("body", "query"))
        parts.append(f"{location}: {item.get('msg')}" if location else str(item.get("msg")))
    return "; ".join(parts) or "the request is not valid"


def describe_json_error(broken: ValueError) -> str:
    """A body that is not JSON, and where, in words: `... expecting value at line 1, column 12`."""
    if isinstance(broken, json.JSONDecodeError):
        reason = broken.msg[:1].lower() + broken.msg[1:]
        return f"the request body is not valid JSON: {reason} at line {broken.lineno}, column {broken.colno}"
    return f"the request body is not valid JSON: {str(broken)[:200]}"


def json_error_of(item: dict[str, Any], body: Any) -> json.JSONDecodeError | None:
    """FastAPI's `json_invalid` validation error (its offset) as the parser's own error, which
    knows the line and column (None: `item` is another kind of error)."""
    location = item.get("loc", ())
    if item.get("type") != "json_invalid" or len(location) < 2 or not isinstance(location[-1], int):
        return None
    document = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    reason = (item.get("ctx") or {}).get("error") or "not valid JSON"
    return json.JSONDecodeError(str(reason), document, min(location[-1], len(document)))
