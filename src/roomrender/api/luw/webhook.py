"""Luw's webhook body: what /v2/results answers, byte for byte, on success or failure."""

from __future__ import annotations

from roomrender.api.luw.presenters import result_body
from roomrender.api.plug import WebhookContext, wire_json
from roomrender.webhooks.bodies import BodyRenderer


def webhook_body(context: WebhookContext) -> BodyRenderer:
    return lambda _event, job: wire_json(result_body(job, context.storage))
