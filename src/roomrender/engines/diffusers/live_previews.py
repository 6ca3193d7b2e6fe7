"""Live previews: the latents of a denoising step, decoded by a tiny autoencoder into a small image.

TAESD (`madebyollin/taesd`, `taesdxl` for SDXL; diffusers' AutoencoderTiny) decodes SD latents
as they are during denoising, with about 1% of the full VAE's compute. Every `every` steps the
first image of each job of the batch is decoded, on the GPU thread, and handed to the worker
(BatchContext.preview), which stores it; the worker's side never blocks the GPU thread.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from roomrender.engines.diffusers.registry import PreviewSpec


def due(preview: PreviewSpec, step: int, total: int) -> bool:
    """Whether step `step` (0-based) of `total` gets a preview: every `every` steps, not the last
    (its result is the job's output)."""
    done = step + 1
    return done % preview.every == 0 and done < total


@torch.inference_mode()
def decode(decoder: Any, latents: torch.Tensor, indices: list[int], max_side: int) -> list[Image.Image]:
    """The images of `latents[indices]`, at most `max_side` pixels on their long side."""
    chosen = latents[torch.tensor(indices, device=latents.device)][:, :4]
    pixels = decoder.decode(chosen.to(decoder.dtype)).sample
    pixels = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    images = []
    for array in pixels.permute(0, 2, 3, 1).cpu().numpy():
        image = Image.fromarray(array, "RGB")
        scale = max_side / max(image.size)
        if scale < 1:
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                 Image.Resampling.BILINEAR)
        images.append(image)
    return images
