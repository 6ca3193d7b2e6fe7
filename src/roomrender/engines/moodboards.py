"""A mood board without a model: the photo, up to six pieces beside it, and the palette drawn
from all of them below, each colour as a swatch with its hex code and nearest named colour (the
CSS colour names Pillow knows)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont, ImageOps

PALETTE_HEIGHT = 180
MARGIN = 24
MAX_PIECES = 6
PALETTE_COLORS = 6
PAPER = (250, 249, 246)
INK = (40, 40, 40)
# Each image is sampled at most this many pixels a side for its palette.
SAMPLE_SIDE = 128


@dataclass(frozen=True)
class Swatch:
    hex: str
    name: str
    share: float  # of the sampled pixels nearest this colour

    @property
    def rgb(self) -> tuple[int, int, int]:
        return (int(self.hex[1:3], 16), int(self.hex[3:5], 16), int(self.hex[5:7], 16))


@cache
def _named_colors() -> tuple[tuple[str, np.ndarray], ...]:
    named = []
    for name in sorted(ImageColor.colormap):
        rgb = ImageColor.getrgb(name)
        named.append((name, np.array(rgb[:3], dtype=np.float32)))
    return tuple(named)


def color_name(rgb: tuple[int, int, int]) -> str:
    """The nearest CSS colour name (by the "redmean" weighted distance, close to perceived)."""
    target = np.array(rgb, dtype=np.float32)
    best, best_distance = "", float("inf")
    for name, value in _named_colors():
        mean_red = (target[0] + value[0]) / 2
        dr, dg, db = target - value
        distance = (2 + mean_red / 256) * dr**2 + 4 * dg**2 + (2 + (255 - mean_red) / 256) * db**2
        if distance < best_distance:
            best, best_distance = name, float(distance)
    return best


def palette(images: list[Image.Image], count: int = PALETTE_COLORS) -> list[Swatch]:
    """The `count` main colours of `images` together (median cut), most used first."""
    samples = []
    for image in images:
        small = image.convert("RGB")
        small.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE))
        samples.append(np.asarray(small).reshape(-1, 3))
    pixels = np.concatenate(samples)
    strip = Image.fromarray(pixels.reshape(1, -1, 3), "RGB")
    quantized = strip.quantize(colors=count, method=Image.Quantize.MEDIANCUT)
    colors = quantized.getcolors() or []
    table = quantized.getpalette() or []
    total = sum(number for number, _ in colors)
    swatches = []
    for number, index in sorted(colors, key=lambda item: -item[0]):
        assert isinstance(index, int)
        rgb = (table[3 * index], table[3 * index + 1], table[3 * index + 2])
        swatches.append(Swatch("#{:02X}{:02X}{:02X}".format(*rgb), color_name(rgb), number / total))
    return swatches


def compose_board(photo: Image.Image, pieces: list[Image.Image],
                  size: tuple[int, int]) -> tuple[Image.Image, list[Swatch]]:
    """The board, `size` pixels, and the palette drawn on it."""
    width, height = size
    board = Image.new("RGB", size, PAPER)
    top = height - PALETTE_HEIGHT
    shown = pieces[:MAX_PIECES]
    photo_width = width - 2 * MARGIN if not shown else (width * 3) // 5 - MARGIN
    board.paste(ImageOps.pad(photo.convert("RGB"), (photo_width - MARGIN, top - 2 * MARGIN),
                             color=PAPER), (MARGIN, MARGIN))
    if shown:
        _grid(board, shown, left=photo_width + MARGIN, top=MARGIN, right=width - MARGIN,
              bottom=top - MARGIN)
    swatches = palette([photo, *shown])
    _palette_strip(board, swatches, top)
    return board, swatches


def _grid(board: Image.Image, pieces: list[Image.Image], left: int, top: int, right: int,
          bottom: int) -> None:
    columns = 1 if len(pieces) == 1 else 2
    rows = -(-len(pieces) // columns)
    cell_w, cell_h = (right - left) // columns, (bottom - top) // rows
    for index, piece in enumerate(pieces):
        x = left + (index % columns) * cell_w
        y = top + (index // columns) * cell_h
        board.paste(ImageOps.pad(piece.convert("RGB"), (cell_w - MARGIN // 2, cell_h - MARGIN // 2),
                                 color=PAPER), (x, y))


def _palette_strip(board: Image.Image, swatches: list[Swatch], top: int) -> None:
    draw = ImageDraw.Draw(board)
    font = ImageFont.load_default(size=16)
    width = (board.width - MARGIN) // max(len(swatches), 1)
    chip_height = PALETTE_HEIGHT - 3 * MARGIN - 8
    for index, swatch in enumerate(swatches):
        x = MARGIN + index * width
        draw.rectangle((x, top, x + width - MARGIN, top + chip_height), fill=swatch.rgb)
        draw.text((x, top + chip_height + 6), swatch.hex, fill=INK, font=font)
        draw.text((x, top + chip_height + 26), swatch.name, fill=INK, font=font)
