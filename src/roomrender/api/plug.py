"""A dialect as a plug (after LitServe's `specs/`): its routes, its error shape, and what it adds
to the core's loops (its webhook body and events), registered at start by `roomrender.dialects`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from starlette.routing import BaseRoute

from roomrender.api.errors import ErrorRenderer
from roomrender.storage.base import Storage
from roomrender.webhooks.bodies import BodyRenderer


@dataclass(frozen=True)
class WebhookContext:
    """What a dialect's webhook body may use."""

    public_base_url: str
    storage: Storage


@dataclass(frozen=True)
class DialectPlug:
    # The name its jobs carry (`jobs.dialect`).
    name: str
    routers: Sequence[APIRouter]
    # Plain routes answered ahead of every router (hot paths; see native.FAST_ROUTES).
    leading_routes: Sequence[BaseRoute] = ()
    # The path prefix where its error shape applies; None: the native shape, the default.
    prefix: str | None = None
    render_error: ErrorRenderer | None = None
    # More path prefixes where its error shape applies (a dialect that shares /v1 with the
    # native one names the paths it owns there).
    error_prefixes: Sequence[str] = ()
    # None: the events the job asked for.
    webhook_events: frozenset[str] | None = None
    webhook_body: Callable[[WebhookContext], BodyRenderer] | None = None
    # What it POSTs to clients, for the OpenAPI document's `webhooks` section.
    callbacks: Sequence[APIRouter] = ()


def wire_json(body: Any) -> str:
    """A JSON body exactly as the routes' JSONResponse writes it."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
