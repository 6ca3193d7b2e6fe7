"""Whether a video model fits the GPU whole or runs offloaded (its models in CPU memory, each
moved to the GPU while it works). Wan 2.2 TI2V-5B holds about 23 GB of weights in half
precision (a 5 B transformer, UMT5-XXL, the VAE in float32) and needs several GB more to denoise
and decode a 720p clip: on an 80 GB card it stays resident, on a 24 GB one it is offloaded."""

from __future__ import annotations

import torch

from roomrender.engines.diffusers.cache import GIB
from roomrender.engines.diffusers.registry import TaskSpec


def needs_offload(spec: TaskSpec, device: torch.device, budget_bytes: int | None) -> bool:
    """True on a GPU whose memory budget is below the task's weights and working memory
    (`weights_gb` + `activations_gb` in the registry). Never on the CPU, where "offloading"
    would move nothing."""
    if device.type != "cuda" or budget_bytes is None:
        return False
    wanted = float(spec.extra.get("weights_gb", 0.0)) + float(spec.extra.get("activations_gb", 0.0))
    return budget_bytes < wanted * GIB
