"""The preview engine: plain image processing, no weights, no AI."""

from roomrender.engines.preview.engine import PreviewEngine, preview_engine

__all__ = ["PreviewEngine", "preview_engine"]
