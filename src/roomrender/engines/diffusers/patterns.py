"""Seamless patterns (Task.pattern) in the diffusers engine: the UNet's and the VAE's
convolutions pad circularly during the call, so the latent and the decoded picture wrap around
their edges; from words (an image-to-image call from a flat grey at strength 1) or from a
picture (image-to-image at the request's strength). Back to the asked size by a resize that
wraps too (the tile is resampled between copies of itself)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image
from torch import nn

from roomrender.canonical.models import GenerationRequest
from roomrender.canonical.tasks import DEFAULT_TILE
from roomrender.engines.tiling import seamless_tile

# What a pattern from words starts from: an even grey (noised away at strength 1).
GREY = (128, 128, 128)


@contextmanager
def circular_convolutions(*modules: Any) -> Iterator[int]:
    """Every padded 2D convolution of `modules` pads circularly inside the block (the models are
    shared with other tasks' pipelines: they are put back as they were after). Yields how many."""
    changed: list[tuple[nn.Conv2d, Any]] = []
    try:
        for module in modules:
            if module is None:
                continue
            for layer in module.modules():
                if isinstance(layer, nn.Conv2d) and any(int(p) > 0 for p in _padding(layer)):
                    changed.append((layer, layer.padding_mode))
                    layer.padding_mode = "circular"
        yield len(changed)
    finally:
        for layer, mode in changed:
            layer.padding_mode = mode


def _padding(layer: nn.Conv2d) -> tuple[int, ...]:
    padding = layer.padding
    return (0,) if isinstance(padding, str) else tuple(padding)


def tile_size(request: GenerationRequest) -> tuple[int, int]:
    """The asked tile: Luw's `texture` arrives as width and height (512, 768, 1024)."""
    side = request.width or request.height or DEFAULT_TILE
    return side, request.height or side


def start_image(image: Image.Image | None, size: tuple[int, int]) -> Image.Image:
    """The image-to-image call's start: the given picture made seam-free at the working size (as
    the preview engine's tile, so that no seam of the photo survives a low strength), else a
    flat grey."""
    if image is None:
        return Image.new("RGB", size, GREY)
    return seamless_tile(image.convert("RGB"), size)


def wrapped_resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` resized as a tile: resampled inside a 3x3 mosaic of itself and the middle cut
    out, so that the filter sees across each edge what the tile has on the other side."""
    width, height = image.size
    mosaic = Image.new(image.mode, (width * 3, height * 3))
    for row in range(3):
        for column in range(3):
            mosaic.paste(image, (column * width, row * height))
    big = mosaic.resize((size[0] * 3, size[1] * 3), Image.Resampling.LANCZOS)
    return big.crop((size[0], size[1], size[0] * 2, size[1] * 2))
