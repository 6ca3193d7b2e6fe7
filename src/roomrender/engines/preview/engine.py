"""The `preview` engine: plain image processing, no model weights, no GPU, no AI.

It is honest about what it is: it re-grades, paints, fills and resamples pixels so that the
whole service can be run and tested anywhere. It cuts a subject out of a plain background
(engines/cutout.py, with that method's limits) and composites a product into a room
(engines/placing.py), measures a room from marks on its photo (engines/measuring.py), films a
room tour by moving a camera over the photo (engines/preview/tour.py: crops, zooms and pans;
nothing new appears), and makes an object's 3D model as a gently extruded card of the cut-out
photo (engines/meshes.py: the right model for frames, rugs and posters, a stand-in for the rest).
A request may ask for the photo's straight-line map back (`control_map="lines"`, engines/lines.py),
drawn as the diffusers engine draws it. Tasks that need a generative model answer "needs the
diffusers engine" at submit time.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image, ImageFilter

from roomrender.canonical.errors import Unsupported
from roomrender.canonical.models import Expand, GenerationRequest, Task
from roomrender.canonical.tasks import TASKS
from roomrender.catalog import Style, find_style, styles
from roomrender.config import Settings
from roomrender.engines.backdrops import backdrop, on_background
from roomrender.engines.base import (
    Artifact,
    BatchCanceled,
    BatchContext,
    EngineJob,
    JobResult,
    RenderedImage,
    RenderedMesh,
)
from roomrender.engines.cutout import cut_out
from roomrender.engines.lines import straight_lines
from roomrender.engines.measuring import measured
from roomrender.engines.meshes import card, glb
from roomrender.engines.moodboards import compose_board
from roomrender.engines.placing import composite_preview
from roomrender.engines.preview.tour import render_tour
from roomrender.engines.tiling import seamless_tile
from roomrender.engines.vectorizing import vectorize

SUPPORTED = frozenset({Task.restyle, Task.recolor, Task.edit, Task.upscale, Task.expand, Task.cutout,
                       Task.place, Task.measure, Task.video, Task.object_3d, Task.vectorize,
                       Task.pattern, Task.change_background, Task.moodboard})
DEFAULT_STRENGTH = 0.55


def _to_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _to_image(array: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")


def _hex_to_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float32) / 255.0


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _style_for(name: str | None) -> Style:
    style = find_style(name)
    if style is not None:
        return style
    # An unknown name still gets a stable palette of its own, derived from the name.
    catalog = list(styles().values())
    digest = int(hashlib.sha256((name or "modern").encode()).hexdigest(), 16)
    return catalog[digest % len(catalog)]


def gradient_map(luminance: np.ndarray, palette: tuple[str, ...]) -> np.ndarray:
    """Map each pixel's luminance onto the palette ordered dark to light."""
    colors = sorted((_hex_to_rgb(c) for c in palette), key=lambda rgb: float(_luminance(rgb)))
    stops = np.linspace(0.0, 1.0, len(colors))
    table = np.stack(colors)
    return np.stack(
        [np.interp(luminance, stops, table[:, channel]) for channel in range(3)], axis=-1
    )


def regrade(image: Image.Image, style: Style, strength: float, rng: np.random.Generator) -> Image.Image:
    """Pull the photo's colours towards the style's palette and finish, pixel by pixel, so every
    edge stays where it was."""
    rgb = _to_array(image)
    luminance = _luminance(rgb)
    # The gradient map as a 256-entry table: a lookup per pixel instead of interpolations.
    levels = np.linspace(0.0, 1.0, 256, dtype=np.float32)
    table = gradient_map(levels, style.palette).astype(np.float32)
    # Keep the photo's own light: scale the toned colour to the pixel's luminance.
    table_luminance = np.maximum(_luminance(table), 1e-3)
    index = np.clip(luminance * 255.0 + 0.5, 0, 255).astype(np.uint8)
    toned = table[index] * (luminance / table_luminance[index])[..., None]
    amount = np.float32(np.clip(strength + rng.uniform(-0.08, 0.08), 0.05, 1.0))
    out = rgb * (1.0 - amount) + toned * amount
    grey = _luminance(out)[..., None]
    out = grey + (out - grey) * np.float32(style.saturation)
    out = 0.5 + (out - 0.5) * np.float32(style.contrast)
    warmth = np.float32(style.warmth + rng.uniform(-0.015, 0.015))
    out[..., 0] += warmth
    out[..., 2] -= warmth
    return _to_image(out)


def area_band(area: str, width: int, height: int) -> Image.Image:
    """Without segmentation, a room's ceiling, walls and floor are approximated as bands."""
    mask = np.zeros((height, width), dtype=np.uint8)
    top, bottom = int(height * 0.18), int(height * 0.72)
    if area == "ceiling":
        mask[:top] = 255
    elif area == "floor":
        mask[bottom:] = 255
    else:
        mask[top:bottom] = 255
    return Image.fromarray(mask, "L")


def paint(image: Image.Image, mask: Image.Image, color: str) -> Image.Image:
    """Paint the masked area in `color`, keeping its texture and light."""
    rgb = _to_array(image)
    weight = np.asarray(mask.convert("L").resize(image.size).filter(ImageFilter.GaussianBlur(2)),
                        dtype=np.float32)[..., None] / 255.0
    luminance = _luminance(rgb)
    inside = weight[..., 0] > 0.5
    mean = float(luminance[inside].mean()) if inside.any() else float(luminance.mean())
    painted = _hex_to_rgb(color) * (luminance / max(mean, 1e-3))[..., None]
    return _to_image(rgb * (1.0 - weight) + painted * weight)


def _downsample(values: np.ndarray) -> np.ndarray:
    height, width = values.shape[:2]
    padded = np.pad(values, [(0, height % 2), (0, width % 2)] + [(0, 0)] * (values.ndim - 2),
                    mode="edge")
    quarter: np.ndarray = (padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2]
                           + padded[1::2, 1::2]) / 4
    return quarter


def push_pull_fill(rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown pixels from their surroundings (a push-pull pyramid)."""
    weight = known.astype(np.float32)
    if weight.min() >= 1.0:
        return rgb
    if min(rgb.shape[:2]) <= 2 or weight.max() <= 0.0:
        mean = (rgb * weight[..., None]).sum((0, 1)) / max(weight.sum(), 1e-6)
        filled: np.ndarray = rgb * weight[..., None] + mean * (1 - weight[..., None])
        return filled
    coarse_weight = _downsample(weight)
    coarse = _downsample(rgb * weight[..., None]) / np.maximum(coarse_weight[..., None], 1e-6)
    filled = push_pull_fill(coarse, np.minimum(coarse_weight * 4.0, 1.0))
    height, width = rgb.shape[:2]
    up = np.asarray(_to_image(filled).resize((width, height), Image.Resampling.BILINEAR),
                    dtype=np.float32) / 255.0
    return rgb * weight[..., None] + up * (1.0 - weight[..., None])


def erase(image: Image.Image, mask: Image.Image) -> Image.Image:
    rgb = _to_array(image)
    hole = np.asarray(mask.convert("L").resize(image.size).filter(ImageFilter.MaxFilter(5))) > 127
    return _to_image(push_pull_fill(rgb, ~hole))


def upscale(image: Image.Image, scale: int) -> Image.Image:
    big = image.convert("RGB").resize((image.width * scale, image.height * scale),
                                      Image.Resampling.LANCZOS)
    return big.filter(ImageFilter.UnsharpMask(radius=1.5, percent=60, threshold=2))


def expand(image: Image.Image, spec: Expand) -> Image.Image:
    width, height = image.size
    left, right = round(width * spec.left), round(width * spec.right)
    top, bottom = round(height * spec.top), round(height * spec.bottom)
    canvas = np.zeros((height + top + bottom, width + left + right, 3), dtype=np.float32)
    known = np.zeros(canvas.shape[:2], dtype=bool)
    canvas[top : top + height, left : left + width] = _to_array(image)
    known[top : top + height, left : left + width] = True
    return _to_image(push_pull_fill(canvas, known))


def preview_engine(settings: Settings) -> PreviewEngine:
    """The `preview` entry point of `roomrender.engines`: it needs no settings."""
    return PreviewEngine()


class PreviewEngine:
    name = "preview"
    max_batch_images = 8

    def supported_tasks(self) -> frozenset[Task]:
        return SUPPORTED

    def validate(self, request: GenerationRequest) -> None:
        if request.task == Task.chat:
            raise Unsupported(
                "chat needs a language model: this server runs the preview engine (image processing, "
                "no AI). Start it with ROOMRENDER_ENGINE=diffusers and the assistant's weights "
                "(`roomrender models pull chat`).", code="needs_language_model")
        if request.task not in SUPPORTED:
            raise Unsupported(
                f"the task {request.task.value!r} needs the diffusers engine; this server runs the "
                "preview engine (image processing, no AI). Start it with ROOMRENDER_ENGINE=diffusers.",
                code="needs_diffusers_engine",
            )
        if request.model is not None:
            raise Unsupported(f"the model {request.model!r} needs the diffusers engine; this server runs "
                              "the preview engine, which has no models", code="needs_diffusers_engine")
        if request.task == Task.edit and not request.remove:
            raise Unsupported(
                "editing a masked area by prompt or material needs the diffusers engine; the preview "
                "engine can only erase (remove=true)",
                code="needs_diffusers_engine",
            )
        if request.task == Task.vectorize and request.prompt:
            raise Unsupported(
                "a drawing from words (a picture painted, then traced) needs the diffusers engine; "
                "the preview engine traces a given image: send one without a prompt",
                code="needs_diffusers_engine")
        if request.task == Task.pattern and not request.image:
            raise Unsupported(
                "a pattern from words alone needs the diffusers engine; the preview engine makes a "
                "seamless tile from an image: send one", code="needs_diffusers_engine")

    def batch_key(self, request: GenerationRequest, width: int | None, height: int | None) -> str:
        return f"preview:{request.task.value}:{width}x{height}"

    def warm_up(self) -> None:
        """Nothing to load: no weights."""

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        results: list[JobResult] = []
        for job in batch:
            try:
                results.append(self._render(job, context))
            except BatchCanceled:
                raise
            except Exception as failure:
                results.append(failure)
        return results

    def _render(self, job: EngineJob, context: BatchContext) -> list[Artifact]:
        request = job.request
        if request.task == Task.measure:
            artifacts = measured(request, job.image)
            context.progress([job.job_id], 1.0)
            return artifacts
        if request.task == Task.video:
            # A camera moving over the still: one clip, whatever n says.
            return [render_tour(job, context)]
        if request.task == Task.object_3d:
            picture = cut_out(job.image)
            model = RenderedMesh(glb(card(picture), picture, request))
            context.progress([job.job_id], 1.0)
            return [model]
        if request.task == Task.vectorize:
            traced = vectorize(job.image)
            context.progress([job.job_id], 1.0)
            return [traced]
        seed = request.seed if request.seed is not None else 0
        outputs: list[Artifact] = []
        if request.control_map == "lines":
            # First, as the diffusers engine answers it: the map of the input photo.
            outputs.append(RenderedImage(straight_lines(job.image), label="lines"))
        for variant in range(request.n):
            rng = np.random.default_rng(seed + variant)
            outputs.append(RenderedImage(self._render_one(job, rng)))
            context.progress([job.job_id], (variant + 1) / request.n)
        return outputs

    def _render_one(self, job: EngineJob, rng: np.random.Generator) -> Image.Image:
        request = job.request
        image = job.image
        if request.task == Task.restyle:
            strength = request.strength if request.strength is not None else DEFAULT_STRENGTH
            return regrade(image, _style_for(request.style), strength, rng)
        if request.task == Task.recolor:
            assert request.color is not None
            mask = job.mask or area_band(request.surface or "wall", image.width, image.height)
            return paint(image, mask, request.color)
        if request.task == Task.edit:
            assert job.mask is not None
            return erase(image, job.mask)
        if request.task == Task.upscale:
            return upscale(image, request.scale or 2)
        if request.task == Task.expand:
            return expand(image, request.expand or Expand())
        if request.task == Task.cutout:
            return cut_out(image)
        if request.task == Task.place:
            product = job.images["product_image"]
            # At a true size the PNG is the decoration as it is, padding and all (no background).
            cutout = product.convert("RGBA") if request.true_size is not None else cut_out(product)
            return composite_preview(image, cutout, request)
        if request.task == Task.pattern:
            return seamless_tile(image, TASKS[Task.pattern].output_size(request, *image.size))
        if request.task == Task.change_background:
            scene = backdrop(image.size, request.color, request.palette,
                             job.images.get("reference_image"))
            return on_background(image, cut_out(image), scene)
        if request.task == Task.moodboard:
            pieces = [picture for name, picture in sorted(job.images.items())
                      if name.startswith("extra_images.")]
            size = TASKS[Task.moodboard].output_size(request, *image.size)
            return compose_board(image, pieces, size)[0]
        raise Unsupported(f"the preview engine cannot run {request.task.value}")
