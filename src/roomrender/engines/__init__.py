"""Engines, chosen by name (ROOMRENDER_ENGINE): a `roomrender.engines` entry point of any installed
distribution (`preview` and `diffusers` here), or `package.module:factory`. Either names a
callable that takes the Settings and answers the Engine."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

from roomrender.config import Settings
from roomrender.engines.base import Engine

ENGINE_GROUP = "roomrender.engines"
EngineFactory = Callable[[Settings], Engine]


def installed_engines() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=ENGINE_GROUP)}


def load_engine(settings: Settings) -> Engine:
    name = settings.engine
    if ":" in name:
        # module:callable, for custom engines not installed as a distribution (and tests' fakes).
        point = EntryPoint(name="custom", value=name, group=ENGINE_GROUP)
    else:
        installed = installed_engines()
        if name not in installed:
            raise ValueError(f"unknown engine {name!r}: the installed engines are "
                             f"{', '.join(sorted(installed)) or 'none'}, or name one as "
                             "'package.module:factory'")
        point = installed[name]
    factory: EngineFactory = point.load()
    return factory(settings)
