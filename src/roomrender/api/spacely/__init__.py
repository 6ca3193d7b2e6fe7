"""The Spacely AI Enterprise dialect (/api/v1), as a plug."""

from roomrender.api.spacely.routes import PLUG

__all__ = ["PLUG"]
