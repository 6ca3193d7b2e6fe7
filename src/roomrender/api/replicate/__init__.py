"""The Replicate predictions dialect (/v1/predictions, /v1/models, /v1/files), as a plug: requests
in (`requests.py`, its models' data in `models.py`), presenters out (`presenters.py`), its errors
(`errors.py`), its webhook body (`webhook.py`), its routes (`routes.py`: predictions;
`resources.py`: models, versions, files, the webhook secret)."""

from roomrender.api.plug import DialectPlug
from roomrender.api.replicate.errors import replicate_error
from roomrender.api.replicate.presenters import DIALECT
from roomrender.api.replicate.resources import router as resources_router
from roomrender.api.replicate.routes import STREAM_ROUTE, router
from roomrender.api.replicate.webhook import webhook_body

PLUG = DialectPlug(
    name=DIALECT, routers=[router, resources_router], render_error=replicate_error,
    leading_routes=[STREAM_ROUTE],
    # Replicate's paths under /v1; those this server does not serve (deployments, trainings,
    # ...) answer a 404 a Replicate client can read.
    error_prefixes=("/v1/predictions", "/v1/models", "/v1/files", "/v1/webhooks/default",
                    "/v1/deployments", "/v1/trainings", "/v1/collections", "/v1/hardware"),
    webhook_body=webhook_body,
)

__all__ = ["PLUG"]
