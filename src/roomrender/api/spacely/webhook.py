"""Spacely's webhook body: the poll-result body, byte for byte, on success or failure."""

from __future__ import annotations

from roomrender.api.plug import WebhookContext, wire_json
from roomrender.api.spacely.presenters import result_body
from roomrender.webhooks.bodies import BodyRenderer


def webhook_body(_context: WebhookContext) -> BodyRenderer:
    return lambda _event, job: wire_json(result_body(job))
