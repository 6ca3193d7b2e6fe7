"""Cutting a subject out of a plain background with classical image processing (no model).

How: the background's colour is the median of the image's border, and its tolerance follows how
much the border varies around it. The background is the region of pixels within that tolerance
that is connected to the border (a flood fill, run on a copy at most WORK_SIDE pixels a side).
Along their edge, at full size, each pixel's alpha is where its colour lies between the
background's and the subject's nearby, and the background's colour is taken out of the edge
pixels, so no fringe of it stays on the subject.

Its limits: it separates a subject from a plain or nearly plain background (a product shot, a
studio photo). A border of several colours or a texture (a room, a street) is refused with a clear
error rather than cut wrongly. A hole in the subject that shows the background without reaching
the border (the gap in a chair's back) keeps the background's colour; a part of the subject of the
background's own colour that touches the border is cut away. The diffusers engine's cutout
segments any photo with a model instead.

An image that is transparent already (a product PNG cut out beforehand) keeps its own alpha.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from roomrender.canonical.errors import Unsupported

WORK_SIDE = 384
BORDER = 2
# The border's colours around their median: a background whose spread is wider is not plain.
MAX_SPREAD = 0.08
# The share of the border a plain background must cover (a subject may touch the border).
MIN_BORDER_SHARE = 0.6
# Distances to the background colour (RGB in 0..1): below LOW a pixel may be background; the
# soft edge ramps from the tolerance to the tolerance plus RAMP.
LOW_MIN, LOW_MAX, RAMP = 0.06, 0.2, 0.25
# The width of the soft edge band, in pixels of the low-resolution decision.
EDGE_BLUR = 1.5
# In the edge band, a pixel this far along from the background's colour to the subject's is opaque.
OPAQUE = 0.85
# Alpha below this counts as transparent when reading an image's own transparency.
TRANSPARENT = 250


class BackgroundNotPlain(Unsupported):
    code = "background_not_plain"


def given_alpha(image: Image.Image) -> np.ndarray | None:
    """The image's own transparency (0..1), when it has some."""
    if image.mode not in ("RGBA", "LA", "PA") and not (image.mode == "P" and "transparency" in image.info):
        return None
    alpha = np.asarray(image.convert("RGBA").getchannel("A"))
    if alpha.min() >= TRANSPARENT:
        return None
    return alpha.astype(np.float32) / 255.0


def _border(rgb: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb[:BORDER].reshape(-1, 3), rgb[-BORDER:].reshape(-1, 3),
                           rgb[:, :BORDER].reshape(-1, 3), rgb[:, -BORDER:].reshape(-1, 3)])


def backdrop(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The background's colour and its tolerance, from the border; BackgroundNotPlain when the
    border is not mostly one colour."""
    border = _border(rgb)
    color = np.median(border, axis=0)
    distance = np.linalg.norm(border - color, axis=1)
    spread = float(np.median(distance))
    low = float(np.clip(4.0 * spread, LOW_MIN, LOW_MAX))
    share = float((distance < low).mean())
    if spread > MAX_SPREAD or share < MIN_BORDER_SHARE:
        raise BackgroundNotPlain(
            "the preview engine cuts a subject out of a plain background only (classical image "
            f"processing): this image's border is not one colour ({share:.0%} of it matches its "
            "median colour). The diffusers engine segments any photo.")
    return color.astype(np.float32), low


def _spread_along_rows(reached: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Every run of candidate pixels along a row that holds a reached pixel, reached whole."""
    height, width = candidate.shape
    runs = np.zeros((height, width + 1), dtype=bool)
    runs[:, :width] = candidate
    flat = runs.ravel()
    starts = flat & ~np.concatenate(([False], flat[:-1]))
    run_id = np.cumsum(starts) * flat
    hit = np.zeros(int(run_id.max()) + 1, dtype=bool)
    seeds = np.zeros((height, width + 1), dtype=bool)
    seeds[:, :width] = reached & candidate
    hit[run_id[seeds.ravel()]] = True
    hit[0] = False
    spread: np.ndarray = hit[run_id].reshape(height, width + 1)[:, :width]
    return spread


def connected_to_border(candidate: np.ndarray) -> np.ndarray:
    """The candidate pixels 4-connected to the image's border (a flood fill from it): runs along
    rows and columns in turn until nothing more is reached."""
    reached = np.zeros_like(candidate)
    reached[0], reached[-1], reached[:, 0], reached[:, -1] = (
        candidate[0], candidate[-1], candidate[:, 0], candidate[:, -1])
    count = -1
    while int(reached.sum()) != count:
        count = int(reached.sum())
        reached = _spread_along_rows(reached, candidate)
        reached = _spread_along_rows(reached.T, candidate.T).T
    return reached


def _small(image: Image.Image) -> Image.Image:
    scale = min(1.0, WORK_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR) if size != image.size else image


def _cut(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The subject's alpha (0..1) at the image's size, and its colours (0..1) with the
    background's taken out of the edge."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    own = given_alpha(image)
    if own is not None:
        return own, rgb
    small = np.asarray(_small(image.convert("RGB")), dtype=np.float32) / 255.0
    color, low = backdrop(small)
    background = connected_to_border(np.linalg.norm(small - color, axis=2) < low)
    if background.all():
        raise BackgroundNotPlain("no subject was found: the whole image has the background's colour")
    # The low-resolution decision at full size: 1 in the background, 0 in the subject, in
    # between along their edge, where each pixel's colour decides instead. The blur makes that
    # band a few pixels wide on both sides, so that it covers the photo's own soft edge.
    radius = EDGE_BLUR * max(1.0, image.width / background.shape[1])
    soft = np.asarray(Image.fromarray(np.where(background, 255, 0).astype(np.uint8), "L")
                      .resize(image.size, Image.Resampling.BILINEAR)
                      .filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255.0
    edge = (soft > 0.0) & (soft < 1.0)
    alpha = (soft < 0.5).astype(np.float32)
    alpha[edge], rgb[edge] = _edge(rgb, soft <= 0.0, edge, color, low, radius)
    return alpha, rgb


def _edge(rgb: np.ndarray, subject: np.ndarray, edge: np.ndarray, background: np.ndarray,
          low: float, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """The edge band's alpha and colours. A pixel there is `a * subject + (1 - a) * background`,
    the subject's colour taken as the average of the sure subject around it: `a` is where the
    pixel lies between the two, and the subject's part is the pixel with the background's taken
    out. Where no subject colour is near, or it is too close to the background's to tell, the
    distance to the background decides `a` and the colour stays."""
    weight = Image.fromarray(np.where(subject, 255, 0).astype(np.uint8), "L")
    spread = ImageFilter.GaussianBlur(radius * 2)
    near = np.asarray(weight.filter(spread), dtype=np.float32)[edge] / 255.0
    colour_sum = np.asarray(Image.fromarray((rgb * subject[..., None] * 255 + 0.5).astype(np.uint8), "RGB")
                            .filter(spread), dtype=np.float32)[edge] / 255.0
    pixels = rgb[edge]
    offset = pixels - background
    share = np.clip((np.linalg.norm(offset, axis=1) - low) / RAMP, 0.0, 1.0)
    line = colour_sum / np.maximum(near, 1e-6)[:, None] - background
    length = np.einsum("ij,ij->i", line, line)
    told = (near > 0.02) & (length > (2 * low) ** 2)
    share[told] = np.clip(np.einsum("ij,ij->i", offset[told], line[told]) / length[told], 0.0, 1.0)
    seen = share > 0.05
    colours = pixels.copy()
    colours[seen] = np.clip(background + offset[seen] / share[seen, None], 0.0, 1.0)
    # The subject's own colours vary around their average: most of the way there is opaque.
    alpha: np.ndarray = np.where(told, np.clip(share / OPAQUE, 0.0, 1.0), share)
    return alpha, colours


def cutout_alpha(image: Image.Image) -> np.ndarray:
    """The subject's alpha (0..1) at the image's size."""
    return _cut(image)[0]


def cut_out(image: Image.Image) -> Image.Image:
    """The subject on a transparent background (RGBA), the background's colour taken out of
    its soft edge."""
    alpha, rgb = _cut(image)
    out = np.dstack([rgb, alpha])
    return Image.fromarray((out * 255.0 + 0.5).astype(np.uint8), "RGBA")
