"""FLUX.1-schnell (FluxPipeline): one call's arguments, and seamless tiles (pattern).

schnell is distilled for 4 steps without classifier-free guidance (guidance 0): no negative
prompt. Its prompt goes whole to the T5 encoder (up to the registry's `max_sequence_length`
tokens, 256 for schnell); CLIP only gives the pooled vector, from its first 77 tokens. Jobs of a
batch share one call: a prompt and a generator per image.

A tileable call (the registry's `tileable`, pattern) makes the picture wrap around: the VAE's
convolutions pad circularly while it decodes, and between steps the packed latents are rolled
across the grid (by a third of it, then another third, ...), so that every seam is in the middle
of the picture at some step and the transformer denoises across it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from roomrender.engines.diffusers.plan import Plan
from roomrender.engines.diffusers.registry import TaskSpec

Item = tuple[Plan, int]


def call_arguments(spec: TaskSpec, flat: list[Item], settings: dict[str, Any]) -> dict[str, Any]:
    width, height = flat[0][0].work_size
    return {
        "prompt": [plan.prompt.positive for plan, _ in flat],
        "num_inference_steps": int(settings["steps"]),
        "guidance_scale": float(settings["guidance"]),
        "max_sequence_length": int(spec.extra.get("max_sequence_length", 256)),
        "generator": [torch.Generator("cpu").manual_seed(plan.seed + variant) for plan, variant in flat],
        "width": width, "height": height, "output_type": "pil",
    }


def is_tileable(spec: TaskSpec) -> bool:
    return bool(spec.extra.get("tileable"))


@contextmanager
def circular_vae(vae: Any) -> Iterator[None]:
    """The VAE's padded convolutions wrap around while inside (restored after: the VAE is shared
    with untiled calls)."""
    convs = [m for m in vae.modules() if isinstance(m, torch.nn.Conv2d) and any(p > 0 for p in _padding(m))]
    before = [m.padding_mode for m in convs]
    for conv in convs:
        conv.padding_mode = "circular"
    try:
        yield
    finally:
        for conv, mode in zip(convs, before, strict=True):
            conv.padding_mode = mode


def _padding(conv: torch.nn.Conv2d) -> tuple[int, ...]:
    return tuple(conv.padding) if isinstance(conv.padding, tuple) else (0,)


def roll_packed(latents: torch.Tensor, height: int, width: int, scale: int, shift: tuple[int, int]) -> torch.Tensor:
    """FLUX's packed latents (batch, tokens, channels), one token per 2×2 latent patch, rolled by
    `shift` tokens down and across."""
    rows, cols = height // (scale * 2), width // (scale * 2)
    batch, tokens, channels = latents.shape
    grid = latents.reshape(batch, rows, cols, channels)
    return grid.roll(shifts=shift, dims=(1, 2)).reshape(batch, tokens, channels)


class Tiler:
    """The step callback's part of a tileable call: the latents rolled after every step but the
    last."""

    def __init__(self, pipeline: Any, width: int, height: int) -> None:
        self.scale = int(pipeline.vae_scale_factor)
        self.width, self.height = width, height
        rows, cols = height // (self.scale * 2), width // (self.scale * 2)
        self.shift = (max(1, rows // 3), max(1, cols // 3))

    def step(self, step: int, total: int, tensors: dict[str, Any]) -> dict[str, Any]:
        if step + 1 < total:
            tensors["latents"] = roll_packed(tensors["latents"], self.height, self.width, self.scale, self.shift)
        return tensors
