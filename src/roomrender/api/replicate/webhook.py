"""Replicate's webhook body: the prediction object, as GET /v1/predictions/{id} answers it, on
every event."""

from __future__ import annotations

from roomrender.api.plug import WebhookContext, wire_json
from roomrender.api.replicate.presenters import prediction_json
from roomrender.webhooks.bodies import BodyRenderer


def webhook_body(context: WebhookContext) -> BodyRenderer:
    return lambda _event, job: wire_json(prediction_json(job, context.public_base_url))
