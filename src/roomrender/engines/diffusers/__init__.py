"""The `diffusers` engine: Stable Diffusion 1.5 pipelines with ControlNets, from local weights.

`engine.py` holds DiffusersEngine; it is imported lazily so that the registry and the model
check (`roomrender models check`) work without importing torch.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("DiffusersEngine", "GenerationFailed"):
        from roomrender.engines.diffusers import engine

        return getattr(engine, name)
    raise AttributeError(name)


__all__ = ["DiffusersEngine", "GenerationFailed"]
