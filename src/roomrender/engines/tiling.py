"""A seamless, tileable texture from a picture, by offset and blend: the picture is blended with
itself shifted by half a tile, weighted so that each edge comes from the shifted copy (whose
opposite edges were neighbours in the picture) and the shifted copy's own seam from the picture.
Done across, then down, so that each pass keeps the other's wrap."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps


def seamless_tile(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` cropped to `size`'s shape and made to wrap: tiled side by side or one above the
    other, no seam shows."""
    fitted = ImageOps.fit(image.convert("RGB"), size, Image.Resampling.LANCZOS)
    pixels = np.asarray(fitted, dtype=np.float32)
    pixels = _wrap(pixels, axis=1)
    pixels = _wrap(pixels, axis=0)
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), "RGB")


def _wrap(pixels: np.ndarray, axis: int) -> np.ndarray:
    length = pixels.shape[axis]
    shifted = np.roll(pixels, length // 2, axis=axis)
    # 0 at both edges, 1 where the shifted copy's seam lies (its middle).
    weight = np.sin(np.pi * (np.arange(length, dtype=np.float32) + 0.5) / length) ** 2
    weight[0] = weight[-1] = 0.0
    shape = [1, 1, 1]
    shape[axis] = length
    weight = weight.reshape(shape)
    blended: np.ndarray = pixels * weight + shifted * (1.0 - weight)
    return blended
