"""Control images and masks: ADE20K segmentation, depth, straight lines, canny edges.

Segmentation and depth are neural models loaded from the models folder (transformers'
AutoModelForSemanticSegmentation / AutoModelForDepthEstimation, so UperNet and Segformer
checkpoints both work) and run batched on the engine's device.

Straight lines: M-LSD is neither in diffusers nor in transformers, and its original weights come
as a pickled torch module of the ControlNet annotators. Rather than ship an unverifiable port, the
`lines` control is the classical detector of engines/lines.py (Canny edges, a probabilistic Hough
transform), which the preview engine draws too; it runs on the CPU in a few milliseconds per image.

Results are cached per input image within one `generate` call (a batch), so a job whose
restyle needs segmentation for the mask and for the control image segments once. The cache is
per thread: two workers of one process prepare their batches side by side.

Off the GPU's critical path: every preprocessor takes the whole batch's images at once (the
engine asks for all of them before planning the jobs). The classical ones run on a small thread
pool: OpenCV releases the GIL inside Canny, GaussianBlur and HoughLinesP, so they run in parallel
with each other and with the thread driving the GPU. The neural ones run one batched forward pass
each. The engine does all of this before it takes the GPU lock, so while one worker's batch is
denoising, another worker (`serve --workers 2`) prepares the next batch.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image, ImageFilter

from roomrender.catalog import load_data_file
from roomrender.engines.lines import straight_lines


def ade_classes() -> list[dict[str, Any]]:
    classes: list[dict[str, Any]] = load_data_file("ade20k.json")["classes"]
    return classes


ADE_PALETTE = np.array([[int(c["color"][i:i + 2], 16) for i in (1, 3, 5)] for c in ade_classes()],
                       dtype=np.uint8)
ADE_NAMES = [c["name"] for c in ade_classes()]
ADE_ID = {name: index for index, name in enumerate(ADE_NAMES)}

# What a restyle keeps: the openings and the load-bearing structure.
OPENINGS = {"windowpane", "door", "screen door", "column"}
# What an empty room keeps besides walls, floor and ceiling: what is built in.
BUILT_IN = OPENINGS | {
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "grass", "sidewalk", "earth",
    "mountain", "water", "house", "sea", "field", "fence", "rock", "railing", "sand", "skyscraper",
    "path", "stairs", "runway", "stairway", "river", "bridge", "hill", "land", "bannister",
    "escalator", "step", "lake", "fireplace", "radiator", "countertop", "kitchen island", "sink",
    "bathtub", "toilet", "shower", "stove", "oven", "dishwasher", "counter", "blind", "awning",
}
AREAS = {"wall": {"wall"}, "floor": {"floor", "rug"}, "ceiling": {"ceiling"}}


# OpenCV's own parallelism is off so that the pool's threads do not oversubscribe the cores.
cv2.setNumThreads(1)
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="preprocess")


def image_digest(image: Image.Image) -> str:
    return hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest() + f"{image.size}{image.mode}"


class Preprocessors:
    """Runs the preprocessing models; `load_segmentation` / `load_depth` give (processor, model)."""

    def __init__(self, load_segmentation: Callable[[], tuple[Any, Any]],
                 load_depth: Callable[[], tuple[Any, Any]], device: torch.device,
                 dtype: torch.dtype) -> None:
        self._load_segmentation = load_segmentation
        self._load_depth = load_depth
        self.device = device
        self.dtype = dtype
        self._local = threading.local()

    @property
    def _cache(self) -> dict[tuple[str, str], Any]:
        if not hasattr(self._local, "cache"):
            self._local.cache = {}
        cache: dict[tuple[str, str], Any] = self._local.cache
        return cache

    def clear(self) -> None:
        self._cache.clear()

    def _cached_batch(self, kind: str, images: list[Image.Image],
                      run: Callable[[list[Image.Image]], list[Any]]) -> list[Any]:
        keys = [(kind, image_digest(image)) for image in images]
        todo: dict[tuple[str, str], Image.Image] = {}
        for key, image in zip(keys, images, strict=True):
            if key not in self._cache:
                todo.setdefault(key, image)
        if todo:
            for key, result in zip(todo, run(list(todo.values())), strict=True):
                self._cache[key] = result
        return [self._cache[key] for key in keys]

    # -- neural ---------------------------------------------------------------------------

    def segment(self, images: list[Image.Image]) -> list[np.ndarray]:
        """ADE20K label maps (H, W) of int, one per image, at each image's size."""
        return self._cached_batch("segmentation", images, self._segment)

    @torch.inference_mode()
    def _segment(self, images: list[Image.Image]) -> list[np.ndarray]:
        processor, model = self._load_segmentation()
        inputs = processor(images=[i.convert("RGB") for i in images], return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        logits = model(pixel_values=pixels).logits.float()
        maps = []
        for index, image in enumerate(images):
            resized = torch.nn.functional.interpolate(logits[index:index + 1], size=image.size[::-1],
                                                      mode="bilinear", align_corners=False)
            maps.append(resized.argmax(dim=1)[0].to("cpu", torch.int16).numpy())
        return maps

    def depth(self, images: list[Image.Image]) -> list[Image.Image]:
        return self._cached_batch("depth", images, self._depth)

    @torch.inference_mode()
    def _depth(self, images: list[Image.Image]) -> list[Image.Image]:
        processor, model = self._load_depth()
        inputs = processor(images=[i.convert("RGB") for i in images], return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        predicted = model(pixel_values=pixels).predicted_depth.float()
        out = []
        for index, image in enumerate(images):
            depth = torch.nn.functional.interpolate(predicted[index][None, None], size=image.size[::-1],
                                                    mode="bicubic", align_corners=False)[0, 0]
            low, high = depth.min(), depth.max()
            scaled = ((depth - low) / (high - low).clamp(min=1e-6) * 255).to("cpu", torch.uint8).numpy()
            out.append(Image.fromarray(scaled, "L").convert("RGB"))
        return out

    # -- classical ------------------------------------------------------------------------

    def lines(self, images: list[Image.Image]) -> list[Image.Image]:
        return self._cached_batch("lines", images, lambda todo: in_parallel(straight_lines, todo))

    def canny(self, images: list[Image.Image]) -> list[Image.Image]:
        return self._cached_batch("canny", images, lambda todo: in_parallel(canny, todo))


def in_parallel(function: Callable[[Image.Image], Image.Image], images: list[Image.Image]) -> list[Image.Image]:
    if len(images) == 1:
        return [function(images[0])]
    return list(_POOL.map(function, images))


def canny(image: Image.Image, low: int = 100, high: int = 200) -> Image.Image:
    gray = np.asarray(image.convert("L"))
    edges = cv2.Canny(gray, low, high)
    return Image.fromarray(edges, "L").convert("RGB")


# -- from label maps to control images and masks ---------------------------------------------

def colorize(labels: np.ndarray) -> Image.Image:
    """A label map in the ADE20K palette, as the segmentation ControlNet expects."""
    return Image.fromarray(ADE_PALETTE[labels.astype(np.int64) % len(ADE_PALETTE)], "RGB")


def _ids(names: set[str]) -> list[int]:
    return [ADE_ID[name] for name in names if name in ADE_ID]


def _mask(selected: np.ndarray, grow: int = 0) -> Image.Image:
    mask = Image.fromarray(np.where(selected, 255, 0).astype(np.uint8), "L")
    if grow:
        mask = mask.filter(ImageFilter.MaxFilter(grow * 2 + 1))
    return mask


def mask_sparing_openings(labels: np.ndarray, kept: set[str] | None = None) -> Image.Image:
    """White (repaint) everywhere but windows, doors and columns (or the `kept` classes: an
    outdoor style's house, windows and paths), which are kept."""
    keep = np.isin(labels, _ids(OPENINGS if kept is None else kept))
    keep_grown = np.asarray(_mask(keep, grow=2)) > 0
    return _mask(~keep_grown)


def mask_furniture(labels: np.ndarray) -> Image.Image:
    """White over furniture and decor (anything not built in), grown to cover their shadows' rims."""
    movable = ~np.isin(labels, _ids(BUILT_IN))
    return _mask(movable, grow=max(2, max(labels.shape) // 64))


def mask_area(labels: np.ndarray, area: str) -> Image.Image:
    return _mask(np.isin(labels, _ids(AREAS[area])))


def without_furniture(labels: np.ndarray) -> np.ndarray:
    """The label map of the same room emptied: furniture takes the label of what lies below it
    (the floor under a sofa); the bottom row falls back to floor."""
    movable = ~np.isin(labels, _ids(BUILT_IN))
    out = labels.copy()
    below = np.full(labels.shape[1], ADE_ID["floor"], dtype=labels.dtype)
    for row in range(labels.shape[0] - 1, -1, -1):
        out[row] = np.where(movable[row], below, labels[row])
        below = out[row]
    return out
