"""The compiled execution path: fixed shapes, channels_last, fused QKV, torch.compile.

torch.compile (and, in "reduce-overhead" mode, CUDA graphs) only pays off when the shapes it
sees repeat: every new shape is a recompilation, tens of seconds for an SD 1.5 UNet. So on this
path the working size of every job is one of a few buckets (ROOMRENDER_DIFFUSERS_BUCKETS; the
input is resized to the bucket nearest its aspect ratio and the output resized back to the asked
size, as it already is on the eager path), and a batch is padded with throw-away images to one of
a few sizes (ROOMRENDER_DIFFUSERS_BATCH_SIZES). The engine's `warm_up()` runs each bucket at each
batch size once when the worker starts, so compilation never happens in a user's request; the
compiled artefacts are cached on disk (TORCHINDUCTOR_CACHE_DIR, the FX graph cache) and a
restarted worker loads them instead of compiling again.

Compiled: the UNets and ControlNets (channels_last, QKV projections fused) and the VAE decoder.
A UNet is shared by the pipelines built on it; each module is prepared once.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("roomrender.engines.diffusers")

COMPILE_MODES = ("off", "default", "max-autotune", "max-autotune-no-cudagraphs", "reduce-overhead")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """"512x512,768x512" → [(512, 512), (768, 512)] (width x height, multiples of 8)."""
    sizes = []
    for part in text.split(","):
        if not part.strip():
            continue
        width, _, height = part.strip().lower().partition("x")
        size = (int(width), int(height))
        if min(size) < 8 or size[0] % 8 or size[1] % 8:
            raise ValueError(f"bucket {part!r}: both sides must be positive multiples of 8")
        sizes.append(size)
    return sizes


def parse_batch_sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise ValueError("batch sizes must be positive integers")
    return sizes


def nearest_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest to width/height (on a log scale, so that 2:1 and
    1:2 are as far from 1:1), the larger one on ties."""
    ratio = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))


def padded_batch_size(count: int, sizes: list[int]) -> int:
    """The smallest allowed batch size holding `count` images (count itself above the largest)."""
    return next((size for size in sizes if size >= count), count)


def use_compile_cache(folder: Path) -> None:
    """Keep torch.compile's artefacts in `folder`, across restarts (unless the operator set it)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(folder))
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")


class Compiler:
    """Prepares pipelines for the compiled path, each module once."""

    def __init__(self, mode: str) -> None:
        if mode not in COMPILE_MODES and mode != "eager-backend":
            raise ValueError(f"ROOMRENDER_DIFFUSERS_COMPILE must be one of {', '.join(COMPILE_MODES)}")
        self.mode = mode
        self._done: dict[int, Any] = {}
        self._configured = False

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def _configure(self) -> None:
        if self._configured:
            return
        import torch._dynamo
        import torch._inductor.config as inductor

        # One graph per (bucket, batch size, guidance on/off): well above dynamo's default of 8.
        for name in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit",
                     "accumulated_recompile_limit"):
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, max(256, getattr(torch._dynamo.config, name)))
        # The 1x1 convolutions of the UNet's resnets run faster as matmuls (diffusers' advice).
        inductor.conv_1x1_as_mm = True
        self._configured = True

    def _compile(self, fn: Any) -> Any:
        if self.mode == "eager-backend":
            # Dynamo's tracing without code generation: a CPU test of this path.
            return torch.compile(fn, backend="eager", dynamic=False)
        mode = None if self.mode == "default" else self.mode
        return torch.compile(fn, mode=mode, dynamic=False)

    def _module(self, module: Any, fuse: bool) -> Any:
        key = id(module)
        if key not in self._done:
            module.to(memory_format=torch.channels_last)
            if fuse and hasattr(module, "fuse_qkv_projections"):
                try:
                    module.fuse_qkv_projections()
                except ValueError as refused:  # IP-Adapter's added projections cannot be fused
                    log.info("QKV projections of %s not fused: %s", type(module).__name__, refused)
            self._done[key] = self._compile(module)
        return self._done[key]

    def forget(self, module: Any) -> None:
        """A module was unloaded: its compiled wrapper goes too."""
        self._done.pop(id(module), None)

    def prepare(self, pipeline: Any) -> Any:
        """The pipeline with its heavy modules compiled (in place; idempotent)."""
        if not self.enabled or getattr(pipeline, "_roomrender_compiled", False):
            return pipeline
        self._configure()
        from diffusers import MultiControlNetModel

        has_ip_adapter = getattr(pipeline, "image_encoder", None) is not None
        pipeline.unet = self._module(pipeline.unet, fuse=not has_ip_adapter)
        controlnet = getattr(pipeline, "controlnet", None)
        if isinstance(controlnet, MultiControlNetModel):
            # A ModuleList that diffusers' hints do not declare.
            nets: Any = controlnet.nets  # type: ignore[attr-defined]
            for index, net in enumerate(nets):
                nets[index] = self._module(net, fuse=True)
        elif controlnet is not None:
            pipeline.controlnet = self._module(controlnet, fuse=True)
        vae = pipeline.vae
        if id(vae) not in self._done:
            vae.to(memory_format=torch.channels_last)
            vae.decode = self._compile(vae.decode)
            self._done[id(vae)] = vae
        pipeline._roomrender_compiled = True
        return pipeline

    @staticmethod
    def step_done() -> None:
        """Between denoising steps: outputs of the last CUDA graph replay may be reused."""
        mark = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
        if mark is not None:
            mark()
