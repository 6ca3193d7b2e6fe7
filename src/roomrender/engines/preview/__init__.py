"""The preview engine: plain image processing, no weights, no AI."""

from roomrender.engines.preview.engine import PreviewEngine

__all__ = ["PreviewEngine"]
