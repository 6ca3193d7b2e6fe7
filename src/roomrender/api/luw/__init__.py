"""The Luw.ai dialect (/v2), as a plug."""

from roomrender.api.luw.routes import PLUG

__all__ = ["PLUG"]
