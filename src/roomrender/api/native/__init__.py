"""The native API (/v1), as a plug."""

from roomrender.api.native.routes import PLUG

__all__ = ["PLUG"]
