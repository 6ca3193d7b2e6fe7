"""The Spacely AI Enterprise dialect (/api/v1), as a plug: requests in (`requests.py`, its data in
`resources.py`), presenters out (`presenters.py`), its errors (`errors.py`), its webhook body
(`webhook.py`) and its routes (`routes.py`)."""

from roomrender.api.plug import DialectPlug
from roomrender.api.spacely.errors import spacely_error
from roomrender.api.spacely.requests import WEBHOOK_EVENTS
from roomrender.api.spacely.routes import router
from roomrender.api.spacely.webhook import webhook_body

PLUG = DialectPlug(name="spacely", routers=[router], prefix="/api/v1", render_error=spacely_error,
                   webhook_events=frozenset(WEBHOOK_EVENTS), webhook_body=webhook_body)

__all__ = ["PLUG"]
