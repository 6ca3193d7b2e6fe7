"""The diffusers engine's throughput settings, read from the environment (ROOMRENDER_DIFFUSERS_*).

Kept here rather than in roomrender.config so the engine's knobs live with the engine; a field of
the same name on `Settings` (`diffusers_compile`, ...) wins when present.
"""

from __future__ import annotations

from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict


class DiffusersSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROOMRENDER_DIFFUSERS_", extra="ignore")

    # torch.compile mode: "off", "default", "max-autotune", "max-autotune-no-cudagraphs",
    # "reduce-overhead" (CUDA graphs). See compiled.py.
    compile: str = "off"
    # The compiled path's working sizes, width x height.
    buckets: str = "512x512,768x512,512x768"
    # The batch sizes the compiled path pads to.
    batch_sizes: str = "1,2,4,8"
    # The tasks loaded (and compiled) at worker start; empty: restyle.
    warmup_tasks: str = ""
    # The most images per batch; 0: the registry's max_batch_images.
    max_batch_images: int = 0
    # The model family a job that names none runs in (sd15, sdxl); empty: the registry's first.
    family: str = ""
    # GiB the loaded models may take (least recently used ones are unloaded beyond it);
    # 0: what the device has, less a margin for activations.
    memory_gb: float = 0.0

    @classmethod
    def read(cls, settings: Any) -> DiffusersSettings:
        """From the environment, overridden by `settings.diffusers_<name>` where those exist."""
        own = cls()
        overrides = {name: getattr(settings, f"diffusers_{name}") for name in cls.model_fields
                     if getattr(settings, f"diffusers_{name}", None) is not None}
        return own.model_copy(update=overrides)
