"""The dialects this server speaks, as plugs: the wiring registers their webhook bodies in the
core (`install_webhook_bodies`) and the app mounts their routes and error shapes."""

from __future__ import annotations

from roomrender.api import luw, native, replicate, spacely
from roomrender.api.plug import DialectPlug, WebhookContext
from roomrender.storage.base import Storage
from roomrender.webhooks.bodies import WebhookBodies

# The native dialect first: Replicate's paths share /v1 with it.
PLUGS: tuple[DialectPlug, ...] = (native.PLUG, spacely.PLUG, luw.PLUG, replicate.PLUG)


def install_webhook_bodies(bodies: WebhookBodies, *, public_base_url: str,
                           storage: Storage) -> None:
    context = WebhookContext(public_base_url, storage)
    for plug in PLUGS:
        if plug.webhook_body is not None:
            bodies.register(plug.name, plug.webhook_body(context), plug.webhook_events)
