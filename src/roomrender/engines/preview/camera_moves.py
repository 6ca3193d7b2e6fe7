"""A camera move over a still photo: each frame a crop of the photo, eased in and out, placed at
sub-pixel precision (fractional crop boxes, resampled) so slow moves glide instead of stepping.
No AI: nothing that the photo does not show appears."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from PIL import Image

# How far a move may zoom in: the source is kept sharp enough for this much.
MAX_ZOOM = 1.35


@dataclass(frozen=True)
class View:
    """Where the camera looks: the crop's place between the photo's edges (x: 0 at the left edge,
    1 at the right; y: 0 at the top, 1 at the bottom) and its zoom (1: the largest crop of the
    frame's shape that the photo holds)."""

    x: float
    y: float
    zoom: float


def ease(t: float) -> float:
    """Smooth start and stop (cubic ease-in-out)."""
    return 4 * t**3 if t < 0.5 else 1 - (-2 * t + 2) ** 3 / 2


def _lerp(start: float, end: float, t: float) -> float:
    return start + (end - start) * t


def _dolly_in(t: float) -> View:
    return View(0.5, 0.5, _lerp(1.0, 1.3, t))


def _dolly_out(t: float) -> View:
    return View(0.5, 0.5, _lerp(1.3, 1.0, t))


def _pan(start: float, end: float) -> Callable[[float], View]:
    return lambda t: View(_lerp(start, end, t), 0.5, 1.2)


def _tilt(start: float, end: float) -> Callable[[float], View]:
    return lambda t: View(0.5, _lerp(start, end, t), 1.2)


def _orbit(t: float) -> View:
    # Sideways along an arc, closest at the middle: the room seems to turn about its centre.
    return View(_lerp(0.0, 1.0, t), 0.5 - 0.04 * math.sin(math.pi * t), 1.15 + 0.1 * math.sin(math.pi * t))


def _flythrough(t: float) -> View:
    return View(_lerp(0.42, 0.58, t), _lerp(0.52, 0.48, t), _lerp(1.0, MAX_ZOOM, t))


MOVES: dict[str, Callable[[float], View]] = {
    "dolly_in": _dolly_in, "dolly_out": _dolly_out,
    "pan_left": _pan(1.0, 0.0), "pan_right": _pan(0.0, 1.0),
    "tilt_up": _tilt(1.0, 0.0), "tilt_down": _tilt(0.0, 1.0),
    "orbit": _orbit, "flythrough": _flythrough,
}


def crop_box(view: View, source: tuple[int, int], frame: tuple[int, int]) -> tuple[float, float, float, float]:
    """The fractional box of the source a view shows, of the frame's shape, inside the photo."""
    source_w, source_h = source
    aspect = frame[0] / frame[1]
    width = min(source_w, source_h * aspect) / view.zoom
    height = width / aspect
    # Clamped: float error must not put an edge a hair outside the photo.
    left = max(0.0, _lerp(0.0, source_w - width, view.x))
    top = max(0.0, _lerp(0.0, source_h - height, view.y))
    return left, top, min(float(source_w), left + width), min(float(source_h), top + height)


def prepared_source(photo: Image.Image, frame: tuple[int, int]) -> Image.Image:
    """The photo at the resolution the closest view needs: frames are cut from it, never from a
    needlessly large original (speed) nor a too small one (sharpness)."""
    photo = photo.convert("RGB")
    aspect = frame[0] / frame[1]
    full_w = min(photo.width, photo.height * aspect)
    scale = frame[0] * MAX_ZOOM / full_w
    if abs(scale - 1) < 0.02:
        return photo
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    return photo.resize(size, Image.Resampling.LANCZOS)


def frames(photo: Image.Image, move: str, frame: tuple[int, int], count: int) -> Iterator[Image.Image]:
    """The clip's frames, one at a time."""
    view_at = MOVES[move]
    source = prepared_source(photo, frame)
    for index in range(count):
        t = ease(index / (count - 1)) if count > 1 else 0.0
        box = crop_box(view_at(t), source.size, frame)
        yield source.resize(frame, Image.Resampling.BILINEAR, box=box)
