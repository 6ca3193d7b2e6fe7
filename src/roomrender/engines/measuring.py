"""`measure`, the same in every engine: geometry (canonical/metrology.py), not a model. The
photo with its dimension lines and labels drawn on it, and the numbers as JSON."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageFont

from roomrender.canonical.metrology import Dimension, Measurement, measure_room
from roomrender.canonical.models import GenerationRequest, Task
from roomrender.engines.base import Artifact, RenderedData, RenderedImage

# Tasks every engine runs the same way, with geometry and no model.
GEOMETRY_TASKS = frozenset({Task.measure})
LINE_COLOR = (255, 196, 0)
LABEL_INK, LABEL_PAPER = (20, 20, 20), (255, 255, 255)
# The end ticks' half length and the line's width, as a share of the photo's shorter side.
TICK, WIDTH = 0.012, 0.004


def measure(request: GenerationRequest, photo: Image.Image) -> Measurement:
    assert request.room is not None and request.room_height is not None
    return measure_room(request.room, request.room_height, photo.width, photo.height)


def _label(length: float) -> str:
    return f"{length:.2f} m"


def draw_dimension(draw: ImageDraw.ImageDraw, dimension: Dimension, side: int,
                   font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    """A dimension line: the segment, a tick across each end, its length in a box at its middle."""
    (x0, y0), (x1, y1) = dimension.start, dimension.end
    width, tick = max(2, round(side * WIDTH)), max(4.0, side * TICK)
    draw.line([(x0, y0), (x1, y1)], fill=LINE_COLOR, width=width)
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    nx, ny = -(y1 - y0) / length * tick, (x1 - x0) / length * tick
    for x, y in ((x0, y0), (x1, y1)):
        draw.line([(x - nx, y - ny), (x + nx, y + ny)], fill=LINE_COLOR, width=width)
    text = f"{dimension.name} {_label(dimension.length)}"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    box = (cx - (right - left) / 2 - 3, cy - (bottom - top) / 2 - 3,
           cx + (right - left) / 2 + 3, cy + (bottom - top) / 2 + 3)
    draw.rectangle(box, fill=LABEL_PAPER, outline=LINE_COLOR)
    draw.text((box[0] + 3 - left, box[1] + 3 - top), text, fill=LABEL_INK, font=font)


def drawn(photo: Image.Image, measurement: Measurement) -> Image.Image:
    out = photo.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    side = min(out.size)
    font = ImageFont.load_default(size=max(10, round(side * 0.03)))
    for dimension in measurement.dimensions:
        draw_dimension(draw, dimension, side, font)
    return out


def measured(request: GenerationRequest, photo: Image.Image) -> list[Artifact]:
    """The photo with its dimension lines, then the measurements as JSON (label `measurements`)."""
    measurement = measure(request, photo)
    return [RenderedImage(drawn(photo, measurement)),
            RenderedData(measurement.as_dict(), label="measurements")]
