"""Small palette swatch images, drawn on demand: the thumbnails of styles and materials."""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageDraw

MIN_SIZE = 16
MAX_SIZE = 1024


@lru_cache(maxsize=256)
def palette_swatch(palette: tuple[str, ...], size: int) -> bytes:
    """A square PNG of diagonal bands, one per colour of `palette` (#RRGGBB strings)."""
    size = max(MIN_SIZE, min(MAX_SIZE, size))
    image = Image.new("RGB", (size, size), palette[0] if palette else "#808080")
    draw = ImageDraw.Draw(image)
    colors = palette or ("#808080",)
    band = 2 * size / len(colors)
    for index, color in enumerate(colors):
        start = index * band
        # A band between two diagonals x + y = start and x + y = start + band.
        draw.polygon([(start, 0), (start + band, 0), (0, start + band), (0, start)], fill=color)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
