"""The native API (/v1), as a plug like the other dialects: presenters out (`presenters.py`; its
requests are the canonical ones, its error shape the server's default), its webhook body
(`webhook.py`), its routes (`routes.py`: jobs, uploads, events, catalog; `webhook_routes.py`:
webhook secrets and deliveries, and the callbacks the OpenAPI document describes;
`workspace_routes.py`: boards, personas, the caller's team)."""

from roomrender.api.native import tasks, webhook_routes, workspace_routes
from roomrender.api.native.routes import FAST_ROUTES, router
from roomrender.api.native.webhook import webhook_body
from roomrender.api.plug import DialectPlug
from roomrender.webhooks.bodies import NATIVE

PLUG = DialectPlug(name=NATIVE, routers=[router, tasks.router, webhook_routes.router,
                            workspace_routes.router],
                   leading_routes=FAST_ROUTES, webhook_body=webhook_body,
                   callbacks=[webhook_routes.callbacks])

__all__ = ["PLUG"]
