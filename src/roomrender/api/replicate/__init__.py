"""The Replicate predictions dialect (/v1/predictions, /v1/models, /v1/files), as a plug."""

from roomrender.api.replicate.routes import PLUG

__all__ = ["PLUG"]
