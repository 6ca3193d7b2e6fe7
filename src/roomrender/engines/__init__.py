"""Engines, chosen by name (ROOMRENDER_ENGINE)."""

from __future__ import annotations

import importlib

from roomrender.config import Settings
from roomrender.engines.base import Engine


def load_engine(settings: Settings) -> Engine:
    if settings.engine == "preview":
        from roomrender.engines.preview.engine import PreviewEngine

        return PreviewEngine()
    if settings.engine == "diffusers":
        from roomrender.engines.diffusers import DiffusersEngine

        diffusers_engine: Engine = DiffusersEngine.from_settings(settings)
        return diffusers_engine
    if ":" in settings.engine:
        # module:callable, for custom engines (and tests' slowed or fake engines).
        module_name, _, attribute = settings.engine.partition(":")
        factory = getattr(importlib.import_module(module_name), attribute)
        engine: Engine = factory(settings)
        return engine
    raise ValueError(
        f"unknown engine {settings.engine!r}: use 'preview', 'diffusers' or 'package.module:factory'"
    )
