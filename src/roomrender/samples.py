"""A synthetic room photo (ceiling, walls, a window, a floor, a sofa, hard edges), for tests,
benchmarks and smoke runs on machines with no photos."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def room_image(width: int = 320, height: int = 240, seed: int = 7) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = np.zeros((height, width, 3), dtype=np.float32)
    pixels[: height // 5] = (235, 232, 225)
    pixels[height // 5 : int(height * 0.7)] = (200, 190, 170)
    pixels[int(height * 0.7) :] = (130, 95, 60)
    pixels[height // 4 : height // 2, width // 8 : width // 3] = (170, 200, 230)
    pixels[int(height * 0.5) : int(height * 0.75), width // 2 : int(width * 0.9)] = (60, 70, 90)
    pixels += rng.normal(0, 4, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def room_photo(width: int = 320, height: int = 240, fmt: str = "JPEG", seed: int = 7) -> bytes:
    buffer = io.BytesIO()
    room_image(width, height, seed).save(buffer, format=fmt)
    return buffer.getvalue()
