"""change_background and moodboard in the diffusers engine: plans over the ordinary ones.

- change_background: the product cut out (the cutout path: segmentation + matting), a new scene
  from the prompt inpainted around it (the mask: everything outside the product, plus a pixel of
  its rim so the scene meets its edge), then the product's own pixels pasted back exactly over
  a soft contact shadow (engines/backdrops.py's `on_background`, as the preview engine does).
- moodboard: the board composed as the preview engine does (engines/moodboards.py), then the
  room rendered after it, as style_transfer renders it: the pieces, gridded into one picture,
  are the IP-Adapter reference. Two outputs a job: the board, then the render(s).
"""

from __future__ import annotations

import secrets

from PIL import Image, ImageFilter, ImageOps

from roomrender.canonical.errors import InvalidRequest
from roomrender.canonical.models import Task
from roomrender.canonical.tasks import TASKS
from roomrender.engines.backdrops import on_background
from roomrender.engines.base import EngineJob, RenderedImage
from roomrender.engines.diffusers.plan import Plan, Planner
from roomrender.engines.diffusers.prompts import build_prompt
from roomrender.engines.diffusers.registry import TaskSpec
from roomrender.engines.moodboards import MAX_PIECES, PAPER, compose_board

SCENE_TASKS = frozenset({Task.change_background, Task.moodboard})
# The side of the gridded pieces the IP-Adapter sees (its CLIP encoder resizes it to its own).
REFERENCE_SIDE = 448


def plan(planner: Planner, job: EngineJob, spec: TaskSpec) -> Plan | None:
    """The plan of a scene task; None for any other task (the planner's own)."""
    if job.request.task == Task.change_background:
        return new_scene(planner, job, spec)
    if job.request.task == Task.moodboard:
        return board_and_render(planner, job, spec)
    return None


def new_scene(planner: Planner, job: EngineJob, spec: TaskSpec) -> Plan:
    request = job.request
    if not request.prompt:
        raise InvalidRequest("change_background on the diffusers engine paints the new scene from a "
                             "prompt: give one (a plain colour, gradient or picture runs on the preview "
                             "engine; only the product cut out is the cutout task)")
    assert planner.cut is not None
    photo = job.image.convert("RGB")
    [cutout] = planner.cut(spec, [job.image])
    work = planner.work_size(*photo.size, spec)
    alpha = cutout.getchannel("A").resize(work, Image.Resampling.BILINEAR)
    # The model repaints all but the product's solid core: its rim (a pixel at the working size)
    # too, so the new scene runs up to the edge the matte draws.
    product = alpha.point(lambda v: 255 if v > 127 else 0).filter(ImageFilter.MinFilter(3))
    mask = ImageOps.invert(product)
    seed = request.seed if request.seed is not None else secrets.randbelow(2**32 - 16)
    scene = Plan(request, planner.call_settings(request, spec), photo.size, work, build_prompt(request),
                 seed, request.n, init=photo.resize(work, Image.Resampling.LANCZOS), mask=mask)
    scene.after = lambda background: on_background(photo, cutout, background)
    return scene


def board_and_render(planner: Planner, job: EngineJob, spec: TaskSpec) -> Plan:
    photo = job.image.convert("RGB")
    pieces = [picture for name, picture in sorted(job.images.items()) if name.startswith("extra_images.")]
    size = TASKS[Task.moodboard].output_size(job.request, *photo.size)
    board, _ = compose_board(photo, pieces, size)
    # The render's look comes from the pieces (the photo itself when there are none).
    reference = grid(pieces[:MAX_PIECES] or [photo], REFERENCE_SIDE)
    render = planner.plan(EngineJob(job.job_id, job.request, {**job.images, "reference_image": reference}),
                          spec)
    render.extra = [RenderedImage(board)]
    return render


def grid(pictures: list[Image.Image], side: int) -> Image.Image:
    """`pictures` padded into the cells of a square, as near square a grid as they make."""
    columns = 1
    while columns * columns < len(pictures):
        columns += 1
    rows = -(-len(pictures) // columns)
    cell_w, cell_h = side // columns, side // rows
    out = Image.new("RGB", (side, side), PAPER)
    for index, picture in enumerate(pictures):
        out.paste(ImageOps.pad(picture.convert("RGB"), (cell_w, cell_h), color=PAPER),
                  ((index % columns) * cell_w, (index // columns) * cell_h))
    return out
