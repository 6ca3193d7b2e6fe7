"""The Luw.ai dialect (/v2), as a plug: requests in (`requests.py`, its data in `params.py`),
presenters out (`presenters.py`), its errors (`errors.py`), its webhook body (`webhook.py`), its
upload URLs (`uploads.py`) and its routes (`routes.py`; the workspace's, boards and personas,
in `workspace_routes.py`)."""

from roomrender.api.luw.errors import luw_error
from roomrender.api.luw.params import WEBHOOK_EVENTS
from roomrender.api.luw.routes import router
from roomrender.api.luw.webhook import webhook_body
from roomrender.api.luw.workspace_routes import router as workspace_router
from roomrender.api.plug import DialectPlug

PLUG = DialectPlug(name="luw", routers=[router, workspace_router], prefix="/v2", render_error=luw_error,
                   webhook_events=frozenset(WEBHOOK_EVENTS), webhook_body=webhook_body)

__all__ = ["PLUG"]
