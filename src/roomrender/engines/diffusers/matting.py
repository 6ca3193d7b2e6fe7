"""Cutting a subject out of a photo with models: segmentation finds it, matting refines its edge.

1. The registry's ADE20K segmentation model labels the photo (at the working resolution); the
   subject is every pixel not of a backdrop class (wall, floor, sky, ...). When no object is found
   (a subject ADE20K has no class for, on a plain background), the classical cut of
   engines/cutout.py gives the coarse mask instead.
2. A trimap is drawn around that mask: sure subject inside, sure background outside, unknown in a
   band along its edge (`unknown_band` of the image's long side).
3. The matting model (ViTMatte, hustvl/vitmatte-small-composition-1k: Apache-2.0, in transformers)
   computes the alpha of the unknown band from the photo and the trimap, at most `matting_side`
   pixels a side; the sure regions keep their 0 or 1.

Both models are openly licensed and load natively in transformers (no remote code). BiRefNet,
the usual single-model choice, needs `trust_remote_code` and so cannot be loaded offline from
the models folder; RMBG is non-commercial.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from roomrender.canonical.errors import Unsupported
from roomrender.engines.cutout import BackgroundNotPlain, cutout_alpha, given_alpha
from roomrender.engines.diffusers.preprocessors import ADE_ID, Preprocessors

# ADE20K classes that are a photo's backdrop, never its subject.
BACKDROP = {
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "grass", "sidewalk", "earth",
    "mountain", "water", "sea", "field", "sand", "skyscraper", "path", "runway", "river", "hill",
    "land", "lake", "dirt track", "windowpane", "curtain", "fence", "rock",
}
SURE, UNKNOWN = 255, 128


class NoSubject(Unsupported):
    code = "no_subject"


def subject_mask(labels: np.ndarray) -> np.ndarray:
    return ~np.isin(labels, [ADE_ID[name] for name in BACKDROP if name in ADE_ID])


def trimap(mask: np.ndarray, band: int) -> np.ndarray:
    """Sure subject (255), unknown (128) within `band` pixels of the mask's edge, background (0)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    binary = mask.astype(np.uint8)
    grown = cv2.dilate(binary, kernel) > 0
    shrunk = cv2.erode(binary, kernel) > 0
    out = np.zeros(mask.shape, dtype=np.uint8)
    out[grown] = UNKNOWN
    out[shrunk] = SURE
    return out


def _fit(image: Image.Image, side: int) -> Image.Image:
    scale = min(1.0, side / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS) if size != image.size else image


class Matter:
    """Cuts subjects out: `cut(images)` → RGBA images of the same sizes."""

    def __init__(self, pre: Preprocessors, load_matting: Callable[[], tuple[Any, Any]], device: torch.device,
                 dtype: torch.dtype, *, resolution: int, unknown_band: float, matting_side: int) -> None:
        self.pre = pre
        self._load_matting = load_matting
        self.device = device
        self.dtype = dtype
        self.resolution = resolution
        self.unknown_band = unknown_band
        self.matting_side = matting_side

    def cut(self, images: list[Image.Image]) -> list[Image.Image]:
        return [self._cut(image) for image in images]

    def _cut(self, image: Image.Image) -> Image.Image:
        rgb = image.convert("RGB")
        own = given_alpha(image)
        if own is not None:
            alpha = own
        else:
            working = _fit(rgb, self.matting_side)
            coarse = self._coarse(working)
            band = max(2, round(max(working.size) * self.unknown_band))
            alpha_small = self._matte(working, trimap(coarse, band))
            alpha = np.asarray(Image.fromarray((alpha_small * 255 + 0.5).astype(np.uint8), "L")
                               .resize(rgb.size, Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
        channel = Image.fromarray((alpha * 255.0 + 0.5).astype(np.uint8), "L")
        out = rgb.copy()
        out.putalpha(channel)
        return out

    def _coarse(self, working: Image.Image) -> np.ndarray:
        """The subject at `working`'s size: segmentation's objects, else the classical cut."""
        small = _fit(working, self.resolution)
        found = subject_mask(self.pre.segment([small])[0])
        if found.any():
            mask = Image.fromarray(np.where(found, 255, 0).astype(np.uint8), "L")
            return np.asarray(mask.resize(working.size, Image.Resampling.NEAREST)) > 127
        try:
            return cutout_alpha(working) > 0.5
        except BackgroundNotPlain:
            raise NoSubject("no subject was found in the image: the segmentation model sees only "
                            "backdrop (walls, floor, sky...) and the background is not plain") from None

    @torch.inference_mode()
    def _matte(self, image: Image.Image, tri: np.ndarray) -> np.ndarray:
        """The alpha (0..1) at `image`'s size: the model's inside the unknown band, the trimap's
        own 0 and 1 elsewhere."""
        processor, model = self._load_matting()
        inputs = processor(images=image, trimaps=Image.fromarray(tri, "L"), return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        predicted = model(pixel_values=pixels).alphas.float()[0, 0]
        # The processor pads to a multiple of 32 at the right and bottom.
        alpha = predicted[: image.height, : image.width].clamp(0, 1).to("cpu").numpy()
        return np.where(tri == SURE, 1.0, np.where(tri == UNKNOWN, alpha, 0.0)).astype(np.float32)
