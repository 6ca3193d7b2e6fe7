"""A product put on a new background without a model: a plain colour, a gradient or a given
picture. The product's own pixels are kept exactly (where its cutout is opaque); a soft contact
shadow grounds it on the new background."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from roomrender.canonical.boxes import Box
from roomrender.engines.placing import contact_shadow

# Without a colour, palette or picture: a studio sweep, light grey above to white below.
STUDIO_SWEEP = ("#D9D9D6", "#F7F7F5")


def hex_colors(palette: str | None) -> list[str]:
    """The #RRGGBB values of a comma-separated palette, in order."""
    if not palette:
        return []
    found = [part.strip() for part in palette.split(",")]
    return [part for part in found if len(part) == 7 and part.startswith("#")
            and all(c in "0123456789abcdefABCDEF" for c in part[1:])]


def _rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)


def gradient(size: tuple[int, int], colors: list[str] | tuple[str, ...]) -> Image.Image:
    """A top-to-bottom gradient through `colors` (one colour: plain)."""
    width, height = size
    stops = np.stack([_rgb(color) for color in colors])
    at = np.linspace(0.0, 1.0, height)
    positions = np.linspace(0.0, 1.0, len(stops))
    column = np.stack([np.interp(at, positions, stops[:, channel]) for channel in range(3)], axis=-1)
    pixels = np.repeat(column[:, None, :], width, axis=1)
    return Image.fromarray((pixels + 0.5).astype(np.uint8), "RGB")


def backdrop(size: tuple[int, int], color: str | None, palette: str | None,
             picture: Image.Image | None) -> Image.Image:
    """The new background: the given picture (cropped to fill), else the colour, else the
    palette's gradient, else a studio sweep."""
    if picture is not None:
        return ImageOps.fit(picture.convert("RGB"), size, Image.Resampling.LANCZOS)
    if color is not None:
        return gradient(size, [color])
    colors = hex_colors(palette)
    return gradient(size, colors if colors else STUDIO_SWEEP)


def on_background(photo: Image.Image, cutout: Image.Image, background: Image.Image) -> Image.Image:
    """The product of `photo`, cut out (`cutout`: RGBA, the photo's size), over `background` on
    a contact shadow. Where the cutout is opaque, the photo's own pixels: the cutout takes the
    old background's colour out of its edge, which must not touch the product itself."""
    product = cutout.convert("RGBA")
    size = product.size
    layer = np.asarray(product).copy()
    opaque = layer[..., 3] == 255
    layer[opaque, :3] = np.asarray(photo.convert("RGB"))[opaque]
    ground = np.asarray(background.convert("RGB").resize(size), dtype=np.float32)
    shaded = np.clip(ground * (1.0 - _shadow(product)[..., None]) + 0.5, 0, 255).astype(np.uint8)
    scene = Image.fromarray(shaded, "RGB").convert("RGBA")
    return Image.alpha_composite(scene, Image.fromarray(layer, "RGBA")).convert("RGB")


def _shadow(product: Image.Image) -> np.ndarray:
    """How much each pixel darkens under the product's footprint (0 where nothing is opaque)."""
    bounds = product.getchannel("A").point(lambda value: 255 if value > 127 else 0).getbbox()
    if bounds is None:
        return np.zeros((product.height, product.width), dtype=np.float32)
    left, top, right, bottom = bounds
    box = Box(x=left, y=top, w=right - left, h=bottom - top)
    return contact_shadow(product.size, product.crop(bounds), box)
