"""From a job to what one pipeline call needs: sizes, init image, mask, control images, prompt,
seed; and back: the generated image resized to the asked size and composited with what is kept."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageFilter

from roomrender.canonical.boxes import Box
from roomrender.canonical.errors import InvalidRequest
from roomrender.canonical.models import Expand, GenerationRequest, Task
from roomrender.catalog import find_style
from roomrender.engines.base import EngineJob, RenderedImage
from roomrender.engines.diffusers.compiled import nearest_bucket
from roomrender.engines.diffusers.guides import guide_start
from roomrender.engines.diffusers.patterns import start_image, tile_size, wrapped_resize
from roomrender.engines.diffusers.preprocessors import (
    ADE_NAMES,
    OPENINGS,
    Preprocessors,
    colorize,
    mask_area,
    mask_furniture,
    mask_sparing_openings,
    without_furniture,
)
from roomrender.engines.diffusers.prompts import Prompt, build_prompt
from roomrender.engines.diffusers.registry import Registry, TaskSpec
from roomrender.engines.placing import box_mask, boxes, full_alpha, grow, paste, product_in_room
from roomrender.engines.preview.engine import erase, paint
from roomrender.engines.preview.engine import expand as expand_canvas

MULTIPLE = 8
# keep_structure raises every ControlNet scale to at least this.
KEEP_STRUCTURE_SCALE = 0.8
# Cuts subjects out of images with the task's matting models (engines/diffusers/matting.py).
Cutter = Callable[[TaskSpec, list[Image.Image]], list[Image.Image]]


def fit(width: int, height: int, resolution: int, multiple: int = MULTIPLE) -> tuple[int, int]:
    """The working size: the long side at `resolution`, both sides multiples of `multiple`."""
    scale = resolution / max(width, height)
    return (max(multiple, round(width * scale / multiple) * multiple),
            max(multiple, round(height * scale / multiple) * multiple))


def text_size(request: GenerationRequest, resolution: int) -> tuple[int, int]:
    """A picture from words: the asked width and height, else the aspect ratio's shape with its
    long side at the model's resolution (both sides multiples of MULTIPLE), else a square."""
    if request.aspect_ratio is not None and request.width is None and request.height is None:
        across, down = (int(part) for part in request.aspect_ratio.split(":"))
        return fit(across, down, resolution)
    return request.width or resolution, request.height or resolution


@dataclass
class Plan:
    request: GenerationRequest
    settings: dict[str, Any]
    target_size: tuple[int, int]
    work_size: tuple[int, int]
    prompt: Prompt
    seed: int
    n: int
    init: Image.Image | None = None
    mask: Image.Image | None = None
    controls: list[Image.Image] = field(default_factory=list)
    reference: Image.Image | None = None
    # What the result is composited over, at the target size: (original, mask of what changes).
    keep: tuple[Image.Image, Image.Image] | None = None
    segments: list[RenderedImage] = field(default_factory=list)
    # The control map the request asked to get back (`control_map`), at the working size.
    control_map: Image.Image | None = None
    # The part of the target the model renders (left, top, right, bottom); None: all of it.
    crop: tuple[int, int, int, int] | None = None
    # Reference images an image-edit model sees after the photo (instruct's extra images).
    references: list[Image.Image] = field(default_factory=list)
    # What is done to each finished image last (change_background pastes its product back).
    after: Callable[[Image.Image], Image.Image] | None = None
    # Outputs that come before the rendered images (a moodboard's board).
    extra: list[RenderedImage] = field(default_factory=list)


class Planner:
    def __init__(self, registry: Registry, pre: Preprocessors, *,
                 buckets: list[tuple[int, int]] | None = None,
                 fast_ready: Callable[[TaskSpec], bool] = lambda _spec: False,
                 cut: Cutter | None = None) -> None:
        self.registry = registry
        self.pre = pre
        self.cut = cut
        # The compiled path's working sizes (None: the long side at the registry's resolution).
        self.buckets = buckets
        # Whether the few-step mode's weights are here for a task.
        self.fast_ready = fast_ready

    def call_settings(self, request: GenerationRequest, spec: TaskSpec) -> dict[str, Any]:
        """The pipeline-call settings a request asks for; jobs with equal settings batch together."""
        fast = request.speed == "fast" and spec.fast is not None and self.fast_ready(spec)
        steps = request.steps or (spec.fast.steps if fast and spec.fast else spec.steps)
        guidance = spec.fast.guidance if fast and spec.fast else spec.guidance
        if request.speed == "fast" and not fast and request.steps is None:
            steps = max(1, steps // 2)
        strength = request.strength if request.strength is not None else spec.strength
        if request.task == Task.pattern and request.image is None:
            # A pattern from words: the grey start is noised away entirely.
            strength = 1.0
        # A pipeline needs at least one denoising step after `strength` cuts the schedule.
        strength = min(1.0, max(strength, 1.0 / steps + 1e-3))
        scales = [c.scale for c in spec.controlnets]
        if request.keep_structure:
            scales = [max(s, KEEP_STRUCTURE_SCALE) for s in scales]
        return {"steps": steps, "guidance": request.guidance if request.guidance is not None else guidance,
                "strength": round(strength, 4), "scales": tuple(scales), "fast": fast}

    def work_size(self, width: int, height: int, spec: TaskSpec) -> tuple[int, int]:
        if self.buckets:
            return nearest_bucket(width, height, self.buckets)
        return fit(width, height, spec.resolution, int(spec.extra.get("multiple", MULTIPLE)))

    def _work_image(self, job: EngineJob, spec: TaskSpec) -> Image.Image:
        image = job.image.convert("RGB")
        return image.resize(self.work_size(*image.size, spec), Image.Resampling.LANCZOS)

    def warm(self, batch: list[EngineJob], spec: TaskSpec) -> None:
        """Run each preprocessor once over the whole batch (the results are cached)."""
        needs = {c.input for c in spec.controlnets}
        if spec.mask in ("spare_openings", "furniture") or (spec.mask == "area") or spec.kind == "segmentation":
            needs.add("segmentation")
        images = [self._work_image(job, spec) for job in batch if "image" in job.images]
        if not images:
            return
        if needs & {"segmentation", "segmentation_without_furniture"}:
            self.pre.segment(images)
        if "depth" in needs:
            self.pre.depth(images)
        if "lines" in needs or any(job.request.control_map == "lines" for job in batch):
            self.pre.lines(images)
        if "canny" in needs:
            self.pre.canny(images)

    def plan(self, job: EngineJob, spec: TaskSpec) -> Plan:
        plan = self._plan(job, spec)
        if job.request.control_map == "lines":
            # The same (cached) map the lines ControlNet is given, whatever the task.
            plan.control_map = self.pre.lines([self._work_image(job, spec)])[0]
        return plan

    def _plan(self, job: EngineJob, spec: TaskSpec) -> Plan:
        request = job.request
        settings = self.call_settings(request, spec)
        seed = request.seed if request.seed is not None else secrets.randbelow(2**32 - 16)
        task = request.task
        resolution = spec.resolution
        if task == Task.pattern and spec.kind == "text" and not request.prompt:
            raise InvalidRequest("a pattern from a picture alone runs on the preview engine; "
                                 "this model draws one from words (a prompt)")
        if task == Task.text_to_image or (task == Task.pattern and spec.kind == "text"):
            target = text_size(request, resolution)
            work = self.work_size(*target, spec)
            # With a guide image (guides.py), the image-to-image call starts from it.
            guide = job.images.get("image")
            return Plan(request, settings, target, work, build_prompt(request), seed, request.n,
                        init=guide_start(guide, work) if guide is not None else None)
        if task == Task.pattern:
            return self._pattern(job, spec, settings, seed)
        original = job.image.convert("RGB")
        if task == Task.upscale and spec.kind == "upscale":
            return self._upscale(job, spec, settings, seed)
        if task == Task.upscale:
            return self._refine_upscale(job, spec, settings, seed)
        if task == Task.expand:
            return self._expand(job, spec, settings, seed)
        if task == Task.cutout:
            return self._cutout(job, spec, settings, seed)
        if task == Task.place:
            return self._place(job, spec, settings, seed)
        target = (request.width or original.width, request.height or original.height)
        image = self._work_image(job, spec)
        plan = Plan(request, settings, target, image.size, build_prompt(request), seed, request.n,
                    init=image)
        if task == Task.segment:
            plan.segments = self._segments(image, original.size, float(spec.extra.get("min_area", 0.005)))
            return plan
        plan.mask = self._mask(job, spec, image)
        if plan.mask is not None:
            target_mask = plan.mask.resize(target, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(1))
            plan.keep = (original.resize(target, Image.Resampling.LANCZOS), target_mask)
        if task == Task.recolor:
            assert request.color is not None and plan.mask is not None
            plan.init = paint(image, plan.mask, request.color)
        if task == Task.edit and request.remove and plan.mask is not None:
            plan.init = erase(image, plan.mask)
        plan.controls = [self._control(kind, image) for kind in (c.input for c in spec.controlnets)]
        if spec.ip_adapter:
            # JobService refused a request without one (canonical TASK_INPUTS).
            plan.reference = job.images["reference_image"].convert("RGB")
        if spec.kind == "image_edit":
            plan.references = [job.images[f"extra_images.{i}"].convert("RGB")
                               for i in range(len(request.extra_images)) if f"extra_images.{i}" in job.images]
        return plan

    def _mask(self, job: EngineJob, spec: TaskSpec, image: Image.Image) -> Image.Image | None:
        given = job.mask.convert("L").resize(image.size, Image.Resampling.NEAREST) if job.mask else None
        if spec.mask is None:
            return None
        if spec.mask == "given" or (given is not None and spec.mask == "area"):
            if given is None:
                raise InvalidRequest("this task needs a mask (white marks the area to change)")
            return given.point(lambda v: 255 if v > 127 else 0)
        labels = self.pre.segment([image])[0]
        if spec.mask == "spare_openings":
            # An outdoor style keeps its own classes (the house, windows, paths) besides the openings.
            style = find_style(job.request.style)
            return mask_sparing_openings(labels, OPENINGS | set(style.keep) if style else None)
        if spec.mask == "furniture":
            return mask_furniture(labels)
        if spec.mask == "area":
            return mask_area(labels, job.request.surface or "wall")
        raise InvalidRequest(f"the mask {spec.mask!r} is not known here")

    def _control(self, kind: str, image: Image.Image) -> Image.Image:
        if kind == "lines":
            return self.pre.lines([image])[0]
        if kind == "canny":
            return self.pre.canny([image])[0]
        if kind == "depth":
            return self.pre.depth([image])[0]
        labels = self.pre.segment([image])[0]
        if kind == "segmentation_without_furniture":
            labels = without_furniture(labels)
        return colorize(labels)

    def _segments(self, image: Image.Image, size: tuple[int, int], min_area: float) -> list[RenderedImage]:
        labels = self.pre.segment([image])[0]
        ids, counts = np.unique(labels, return_counts=True)
        order = sorted(zip(counts.tolist(), ids.tolist(), strict=True), reverse=True)
        segments: list[RenderedImage] = []
        for count, label in order:
            if count / labels.size < min_area and segments:
                continue
            mask = Image.fromarray(np.where(labels == label, 255, 0).astype(np.uint8), "L")
            segments.append(RenderedImage(mask.resize(size, Image.Resampling.NEAREST),
                                          label=ADE_NAMES[label] if label < len(ADE_NAMES) else str(label)))
        return segments

    def _upscale(self, job: EngineJob, spec: TaskSpec, settings: dict[str, Any], seed: int) -> Plan:
        request = job.request
        original = job.image.convert("RGB")
        scale = request.scale or 2
        target = (original.width * scale, original.height * scale)
        # The x4 model's input is capped (its cost grows with the output's area); what the cap
        # leaves out of 2x/8x is made up by a Lanczos resize of its 4x output.
        cap = int(spec.extra.get("max_input_side", 512))
        low = original.resize(fit(*original.size, min(cap, max(original.size))), Image.Resampling.LANCZOS)
        return Plan(request, settings, target, (low.width * 4, low.height * 4), build_prompt(request),
                    seed, request.n, init=low)

    def _refine_upscale(self, job: EngineJob, spec: TaskSpec, settings: dict[str, Any], seed: int) -> Plan:
        """An upscale by img2img at the output size (capped by `max_output_side`): the image
        resized up with Lanczos, then refined at low strength, held by its own edges (SDXL)."""
        request = job.request
        original = job.image.convert("RGB")
        scale = request.scale or 2
        target = (original.width * scale, original.height * scale)
        cap = int(spec.extra.get("max_output_side", 2048))
        work = fit(*target, min(cap, max(target)))
        image = original.resize(work, Image.Resampling.LANCZOS)
        plan = Plan(request, settings, target, work, build_prompt(request), seed, request.n, init=image)
        plan.controls = [self._control(kind, image) for kind in (c.input for c in spec.controlnets)]
        return plan

    def _expand(self, job: EngineJob, spec: TaskSpec, settings: dict[str, Any], seed: int) -> Plan:
        request = job.request
        original = job.image.convert("RGB")
        sides = request.expand or Expand()
        canvas = expand_canvas(original, sides)
        left, top = round(original.width * sides.left), round(original.height * sides.top)
        outside = Image.new("L", canvas.size, 255)
        outside.paste(0, (left, top, left + original.width, top + original.height))
        target = (request.width or canvas.width, request.height or canvas.height)
        work = self.work_size(*canvas.size, spec)
        # Repaint a thin seam inside the original too, so the new area blends in.
        seam = max(2, max(work) // 64)
        work_mask = outside.resize(work, Image.Resampling.NEAREST).filter(ImageFilter.MaxFilter(seam * 2 + 1))
        keep_mask = outside.resize(target, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(2))
        canvas_target = canvas.resize(target, Image.Resampling.LANCZOS)
        return Plan(request, settings, target, work, build_prompt(request), seed, request.n,
                    init=canvas.resize(work, Image.Resampling.LANCZOS), mask=work_mask,
                    keep=(canvas_target, keep_mask))

    def _pattern(self, job: EngineJob, spec: TaskSpec, settings: dict[str, Any], seed: int) -> Plan:
        """A tile (patterns.py): from a seam-free start at the working size, square by default."""
        request = job.request
        target = tile_size(request)
        work = self.work_size(*target, spec)
        start = start_image(job.images.get("image"), work)
        return Plan(request, settings, target, work, build_prompt(request), seed, request.n, init=start)

    def control_output(self, plan: Plan) -> list[RenderedImage]:
        """The asked control map at the output size, labelled with its name (or nothing)."""
        if plan.control_map is None or plan.request.control_map is None:
            return []
        resized = plan.control_map.resize(plan.target_size, Image.Resampling.BILINEAR)
        return [RenderedImage(resized, label=plan.request.control_map)]

    def _cutout(self, job: EngineJob, spec: TaskSpec, settings: dict[str, Any], seed: int) -> Plan:
        assert self.cut is not None
        [cut] = self.cut(spec, [job.image])
        request = job.request
        plan = Plan(request, settings, cut.size, cut.size, build_prompt(request), seed, request.n)
        plan.segments = [RenderedImage(cut) for _ in range(request.n)]
        return plan

    def place_crop(self, request: GenerationRequest, width: int, height: int, spec: TaskSpec) -> Box:
        """What of the photo a place renders: its area and some context around it."""
        return grow(boxes(request, width, height)[1], float(spec.extra.get("context", 0.25)), width, height)

    def _place(self, job: EngineJob, spec: TaskSpec, settings: dict[str, Any], seed: int) -> Plan:
        """The product pasted at its place; the model repaints a ring around it (its rim and the
        floor under it), conditioned on the product, in a crop around the area."""
        assert self.cut is not None
        request = job.request
        room = job.image.convert("RGB")
        _, area = boxes(request, *room.size)
        if request.true_size is not None:
            # At a true size the PNG is the decoration as it is, padding and all (no background).
            cutout = job.images["product_image"].convert("RGBA")
        else:
            [cutout] = self.cut(spec, [job.images["product_image"]])
        product, box = product_in_room(cutout, request, room.size)
        composed = paste(room, product, box)
        flat = request.true_size is not None and request.true_size.surface == "floor"
        changed = ring_mask(product, box, area, room.size, float(spec.extra.get("ring", 0.12)), flat)
        crop = self.place_crop(request, *room.size, spec)
        work = self.work_size(crop.w, crop.h, spec)
        mask = (changed.crop(crop.corners()).resize(work, Image.Resampling.BILINEAR)
                .point(lambda v: 255 if v > 0 else 0))
        reference = Image.new("RGB", product.size, (127, 127, 127))
        reference.paste(product, (0, 0), product.getchannel("A"))
        return Plan(request, settings, room.size, work, build_prompt(request), seed, request.n,
                    init=composed.crop(crop.corners()).resize(work, Image.Resampling.LANCZOS), mask=mask,
                    reference=reference, keep=(composed, changed), crop=crop.corners())

    def finish(self, plan: Plan, image: Image.Image) -> Image.Image:
        """The generated image at the asked size, composited over what the mask keeps."""
        if plan.crop is not None and plan.keep is not None:
            left, top, right, bottom = plan.crop
            result = plan.keep[0].copy()
            result.paste(image.convert("RGB").resize((right - left, bottom - top), Image.Resampling.LANCZOS),
                         (left, top))
        elif plan.request.task == Task.pattern:
            result = wrapped_resize(image.convert("RGB"), plan.target_size)
        else:
            result = image.convert("RGB").resize(plan.target_size, Image.Resampling.LANCZOS)
        if plan.keep is not None:
            original, changed = plan.keep
            result = Image.composite(result, original, changed)
        request = plan.request
        if request.task == Task.recolor and request.exact_color and plan.keep is not None:
            assert request.color is not None
            result = paint(result, plan.keep[1], request.color)
        return plan.after(result) if plan.after is not None else result


def ring_mask(product: Image.Image, box: Box, area: Box, size: tuple[int, int], ring: float,
              flat: bool = False) -> Image.Image:
    """What a place repaints (soft, 0 outside `area`): the product's rim, a ring around it `ring`
    of its size wide, and the floor under it, where its contact shadow falls (none under a
    `flat` product, a rug)."""
    solid = (full_alpha(product, box, size) > 0.5).astype(np.uint8)
    outer = max(3, round(min(box.w, box.h) * ring))
    inner = max(1, outer // 4)

    def disc(radius: int) -> np.ndarray:
        return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))

    changed = (cv2.dilate(solid, disc(outer)) > 0) & ~(cv2.erode(solid, disc(inner)) > 0)
    if not flat:
        changed[max(0, box.bottom - outer // 2):box.bottom + outer, max(0, box.x - outer):box.right + outer] = True
    soft = Image.fromarray(np.where(changed, 255, 0).astype(np.uint8), "L").filter(
        ImageFilter.GaussianBlur(max(1.0, outer / 4)))
    inside = np.asarray(soft, dtype=np.float32) * box_mask(area, size)
    return Image.fromarray(inside.astype(np.uint8), "L")
