"""Putting a cut-out product into a room photo: where it goes, and the preview engine's composite.

Both engines share the geometry: the product (cropped to its visible pixels) is scaled to fit
inside `placement` keeping its proportions, centred, standing on the placement's bottom edge
(where a piece of furniture meets the floor). At a true size, the whole PNG (its padding is part
of the size given) is warped onto the quad it takes on the wall, or on the floor (a rug), in
perspective. Nothing outside
`area` changes, to the pixel.

The preview engine then composites it with image processing only: the product's light is pulled
a little towards the room's light around it (the ambient colour cast and brightness, bounded so
the product keeps its colours), and a soft contact shadow darkens the floor under it (none under
a rug, which lies flat).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from roomrender.canonical.boxes import Box, default_area
from roomrender.canonical.metrology import Quad, true_size_quad
from roomrender.canonical.models import GenerationRequest

# How far the light matching may move the product's colours (per channel, as a factor).
MAX_CAST, MAX_GAIN, MIN_GAIN = 0.06, 1.08, 0.88
# The contact shadow: how dark at its centre, and its height as a share of the product's.
SHADOW_DARKNESS, SHADOW_HEIGHT = 0.45, 0.1


def boxes(request: GenerationRequest, width: int, height: int) -> tuple[Box, Box]:
    """The placement and the area of a place request on a `width` x `height` photo (JobService
    checked them against it)."""
    assert request.placement is not None
    return request.placement, request.area_box or default_area(request.placement, width, height)


def grow(box: Box, margin: float, width: int, height: int) -> Box:
    """`box` and `margin` of its size around it, within the photo."""
    dx, dy = round(box.w * margin), round(box.h * margin)
    left, top = max(0, box.x - dx), max(0, box.y - dy)
    return Box(x=left, y=top, w=min(width, box.right + dx) - left, h=min(height, box.bottom + dy) - top)


def crop_to_subject(cutout: Image.Image) -> Image.Image:
    """The RGBA cut-out cropped to its visible pixels."""
    found = cutout.getchannel("A").point(lambda v: 255 if v > 8 else 0).getbbox()
    return cutout.crop(found) if found else cutout


def fit(size: tuple[int, int], placement: Box) -> Box:
    """Where a product of `size` goes: inside `placement`, proportions kept, centred, standing
    on its bottom edge."""
    scale = min(placement.w / size[0], placement.h / size[1])
    w, h = max(1, min(placement.w, round(size[0] * scale))), max(1, min(placement.h, round(size[1] * scale)))
    return Box(x=placement.x + (placement.w - w) // 2, y=placement.bottom - h, w=w, h=h)


def scaled_product(cutout: Image.Image, placement: Box) -> tuple[Image.Image, Box]:
    """The cut-out at its size in the room, and the box it takes there."""
    product = crop_to_subject(cutout)
    box = fit(product.size, placement)
    return product.resize((box.w, box.h), Image.Resampling.LANCZOS), box


def warped_onto(cutout: Image.Image, quad: Quad, box: Box) -> Image.Image:
    """The whole RGBA cut-out warped onto `quad` (its corners clockwise from the top-left, in
    pixels of the photo), as an image of `box`'s size placed at `box`."""
    corners = np.array(quad, dtype=np.float64) - (box.x, box.y)
    source = ((0, 0), (cutout.width, 0), (cutout.width, cutout.height), (0, cutout.height))
    # Pillow's perspective transform maps each output pixel to its source pixel.
    rows = []
    for (x, y), (u, v) in zip(corners, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    targets = np.array(source, dtype=np.float64).reshape(-1)
    coefficients = np.linalg.solve(np.array(rows), targets)
    return cutout.convert("RGBA").transform(
        (box.w, box.h), Image.Transform.PERSPECTIVE, tuple(float(c) for c in coefficients),
        Image.Resampling.BICUBIC, fillcolor=(0, 0, 0, 0))


def product_in_room(cutout: Image.Image, request: GenerationRequest,
                    size: tuple[int, int]) -> tuple[Image.Image, Box]:
    """The product as it goes into the room and the box it takes there: at its true size on the
    wall or the floor when the request gives one, else fitted into its placement."""
    assert request.placement is not None
    if request.true_size is not None:
        quad = true_size_quad(request.true_size, *size)
        return warped_onto(cutout, quad, request.placement), request.placement
    return scaled_product(cutout, request.placement)


def full_alpha(product: Image.Image, box: Box, size: tuple[int, int]) -> np.ndarray:
    """The product's alpha (0..1) on a canvas of the room's size."""
    canvas = Image.new("L", size, 0)
    canvas.paste(product.getchannel("A"), (box.x, box.y))
    return np.asarray(canvas, dtype=np.float32) / 255.0


def box_mask(box: Box, size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), dtype=bool)
    mask[box.y:box.bottom, box.x:box.right] = True
    return mask


def paste(room: Image.Image, product: Image.Image, box: Box) -> Image.Image:
    """The product laid over the room (RGB)."""
    out = room.convert("RGB").copy()
    out.paste(product.convert("RGB"), (box.x, box.y), product.getchannel("A"))
    return out


def only_inside(changed: Image.Image, original: Image.Image, area: Box) -> Image.Image:
    """`changed` inside `area`, `original` outside it, exactly."""
    out = original.convert("RGB").copy()
    out.paste(changed.convert("RGB").crop(area.corners()), (area.x, area.y))
    return out


# -- the preview engine's composite --------------------------------------------------------------

def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def match_light(product: Image.Image, room: Image.Image, area: Box, box: Box) -> Image.Image:
    """The product lit a little more like the room around it: the ambient colour cast of the
    area (outside the product's box) and its brightness, within bounds."""
    rgb = np.asarray(room.convert("RGB"), dtype=np.float32) / 255.0
    around = box_mask(area, room.size) & ~box_mask(box, room.size)
    ambient = rgb[around].mean(axis=0) if around.any() else rgb[box_mask(area, room.size)].mean(axis=0)
    cast = np.clip(ambient / max(float(ambient.mean()), 1e-3), 1.0 - MAX_CAST, 1.0 + MAX_CAST)
    gain = float(np.clip((float(_luminance(ambient)) / 0.6) ** 0.25, MIN_GAIN, MAX_GAIN))
    pixels = np.asarray(product.convert("RGBA"), dtype=np.float32) / 255.0
    pixels[..., :3] = np.clip(pixels[..., :3] * cast * gain, 0.0, 1.0)
    return Image.fromarray((pixels * 255.0 + 0.5).astype(np.uint8), "RGBA")


def contact_shadow(size: tuple[int, int], product: Image.Image, box: Box) -> np.ndarray:
    """How much each pixel of the room darkens (0..1): a soft ellipse on the floor under the
    product, as wide as the product's footprint."""
    alpha = np.asarray(product.getchannel("A"), dtype=np.float32) / 255.0
    columns = np.nonzero(alpha[-max(1, box.h // 10):].max(axis=0) > 0.5)[0]
    left, right = (box.x + int(columns[0]), box.x + int(columns[-1]) + 1) if columns.size else (box.x, box.right)
    half_height = max(2, round(box.h * SHADOW_HEIGHT / 2))
    shadow = Image.new("L", size, 0)
    ellipse = Image.new("L", (right - left + 2 * half_height, 2 * half_height), 0)
    ImageDraw.Draw(ellipse).ellipse((0, 0, ellipse.width - 1, ellipse.height - 1), fill=255)
    shadow.paste(ellipse, (left - half_height, box.bottom - half_height))
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(1.0, half_height / 2)))
    return np.asarray(shadow, dtype=np.float32) / 255.0 * SHADOW_DARKNESS


def composite_preview(room: Image.Image, cutout: Image.Image, request: GenerationRequest) -> Image.Image:
    """The preview engine's `place`: the product matched to the room's light, on a contact
    shadow; the room outside `area` unchanged."""
    room = room.convert("RGB")
    area = boxes(request, *room.size)[1]
    product, box = product_in_room(cutout, request, room.size)
    product = match_light(product, room, area, box)
    rgb = np.asarray(room, dtype=np.float32) / 255.0
    # A rug lies flat: no contact shadow under it.
    flat = request.true_size is not None and request.true_size.surface == "floor"
    shadow = 0.0 if flat else contact_shadow(room.size, product, box)[..., None]
    shaded = rgb * (1.0 - shadow)
    shaded_image = Image.fromarray((np.clip(shaded, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")
    return only_inside(paste(shaded_image, product, box), room, area)
