"""Qwen-Image-Edit (QwenImageEditPlusPipeline: one to three images): instructions, one call's
arguments.

Qwen-Image-Edit changes what a sentence asks and keeps the rest of the photo (walls, windows,
camera), so each task is an instruction: the user's own (instruct, edit) or one written here from
the request (restyle, empty_room, stage, recolor), with the room type, style, palette and
materials in words. instruct passes up to two reference images after the room ("Picture 2",
"Picture 3" to the model). The mask of edit and recolor is applied after the edit as a hard
composite (plan.py's `keep`): outside it the photo's pixels stay.

The prompt is read by Qwen2.5-VL (up to 1024 tokens: long prompts are taken whole). Guidance is
true classifier-free guidance (`true_cfg_scale`) with the request's negative prompt.
QwenImageEditPlusPipeline renders one prompt per call (diffusers refuses a batch of prompts), so
jobs of a batch run one call each; a job's `n` variants share its call (num_images_per_prompt,
a generator each).
"""

from __future__ import annotations

from typing import Any

import torch

from roomrender.canonical.models import GenerationRequest, Task
from roomrender.catalog import find_room_type, find_style
from roomrender.engines.diffusers.plan import Plan
from roomrender.engines.diffusers.prompts import color_name
from roomrender.engines.diffusers.registry import TaskSpec

Item = tuple[Plan, int]
KEEP = "Keep the walls, windows, doors, floor, ceiling, lighting and the camera exactly as they are."
# Reference images instruct passes after the room.
MAX_REFERENCES = 2


def one_job_per_call(spec: TaskSpec) -> bool:
    return spec.kind == "image_edit"


def _words(request: GenerationRequest) -> tuple[str, str]:
    room = find_room_type(request.room_type)
    style = find_style(request.style)
    return (room.name.lower() if room else "room"), (style.name.lower() if style else "")


def _extras(request: GenerationRequest) -> str:
    extras = []
    if request.palette:
        extras.append(f"Use a {request.palette} colour palette.")
    if request.materials:
        extras.append("Materials: " + ", ".join(request.materials) + ".")
    return " ".join(extras)


def instruction(request: GenerationRequest) -> str:
    """What the model is asked to do, in a sentence or three."""
    room, style = _words(request)
    asked = (request.prompt or "").strip()
    task = request.task
    if task == Task.instruct:
        text = asked
        if request.extra_images:
            text += " Use the furniture, materials and colours of the other pictures as references."
    elif task == Task.restyle:
        text = f"Redesign this {room} in the {style or 'same'} interior style. {asked} {_extras(request)} {KEEP}"
    elif task == Task.empty_room:
        text = ("Remove all furniture, rugs, curtains, plants and decorations from this room, leaving it empty and "
                f"clean. {KEEP}")
    elif task == Task.stage:
        text = (f"Furnish this empty {room} {'in the ' + style + ' style ' if style else ''}with fitting furniture "
                f"and decoration. {asked} {_extras(request)} {KEEP}")
    elif task == Task.recolor:
        surface = request.surface or "wall"
        colour = color_name(request.color) if request.color else "the given colour"
        text = (f"Paint the {surface}s {colour} ({request.color}), with natural shading. {asked} "
                "Change nothing else.")
    elif task == Task.edit and request.remove:
        text = f"Remove the object in the marked area and fill it with what is behind it. {asked}"
    else:
        text = asked or "Improve the marked area so that it fits the room."
    return " ".join(text.split())


def call_arguments(spec: TaskSpec, flat: list[Item], settings: dict[str, Any]) -> dict[str, Any]:
    """The arguments of one job's call (every item is of one plan: see `one_job_per_call`)."""
    plan = flat[0][0]
    assert plan.init is not None
    width, height = plan.work_size
    negative = (plan.request.negative_prompt or "").strip() or " "
    return {
        "image": [plan.init, *plan.references[:MAX_REFERENCES]],
        "prompt": instruction(plan.request),
        "negative_prompt": negative,
        "true_cfg_scale": float(settings["guidance"]),
        "num_inference_steps": int(settings["steps"]),
        "num_images_per_prompt": len(flat),
        "generator": [torch.Generator("cpu").manual_seed(p.seed + variant) for p, variant in flat],
        "width": width, "height": height, "output_type": "pil",
    }


IMAGE_TOKEN = "<|image_pad|>"


class ImageTextProcessor:
    """Qwen2-VL's processor for what the pipeline asks of it (text with images), without the
    video processor transformers' Qwen2VLProcessor insists on (which needs torchvision): the
    image processor's patches, and each `<|image_pad|>` of the text repeated once per merged
    patch of its image, as Qwen2VLProcessor does."""

    def __init__(self, image_processor: Any, tokenizer: Any) -> None:
        self.image_processor = image_processor
        self.tokenizer = tokenizer

    @classmethod
    def from_folder(cls, folder: Any) -> ImageTextProcessor:
        from transformers import AutoImageProcessor, AutoTokenizer

        return cls(AutoImageProcessor.from_pretrained(folder, local_files_only=True),
                   AutoTokenizer.from_pretrained(folder, local_files_only=True))

    def __call__(self, text: list[str], images: Any = None, padding: bool = True,
                 return_tensors: str = "pt") -> Any:
        from transformers import BatchFeature

        found: dict[str, Any] = {}
        if images is not None:
            found = dict(self.image_processor(images=images, return_tensors=return_tensors))
            merge = int(self.image_processor.merge_size) ** 2
            counts = iter([int(grid.prod()) // merge for grid in found["image_grid_thw"]])
            expanded = []
            for line in text:
                pieces = line.split(IMAGE_TOKEN)
                out = pieces[0]
                for piece in pieces[1:]:
                    out += IMAGE_TOKEN * next(counts) + piece
                expanded.append(out)
            text = expanded
        tokens = self.tokenizer(text, padding=padding, return_tensors=return_tensors)
        return BatchFeature(data={**dict(tokens), **found}, tensor_type=return_tensors)
