"""One pipeline call's arguments, by the registry's `kind`: prompts as embeddings, images, masks,
control images (plain ControlNets or a ControlNet Union's modes), IP-Adapter embeddings."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from roomrender.engines.diffusers import flux, qwen_edit
from roomrender.engines.diffusers.conditioning import prompt_embeddings
from roomrender.engines.diffusers.plan import Plan
from roomrender.engines.diffusers.registry import TaskSpec

# (plan, variant): one image of the call.
Item = tuple[Plan, int]


def as_batch(images: list[Image.Image]) -> torch.Tensor:
    arrays = [np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0 for image in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def call_arguments(spec: TaskSpec, pipeline: Any, flat: list[Item], settings: dict[str, Any],
                   reference_embeds: Any = None) -> dict[str, Any]:
    """Everything of the call but the callbacks; `reference_embeds(images)` embeds IP-Adapter
    reference images."""
    if spec.pipeline == "FluxPipeline":
        return flux.call_arguments(spec, flat, settings)
    if spec.kind == "image_edit":
        return qwen_edit.call_arguments(spec, flat, settings)
    kwargs: dict[str, Any] = {
        "num_inference_steps": int(settings["steps"]),
        "guidance_scale": float(settings["guidance"]),
        "generator": [torch.Generator("cpu").manual_seed(plan.seed + variant) for plan, variant in flat],
        "output_type": "pil",
        **prompt_embeddings(pipeline, [plan.prompt.positive for plan, _ in flat],
                            [plan.prompt.negative for plan, _ in flat]),
    }
    images = [plan.init for plan, _ in flat]
    if spec.kind == "upscale":
        kwargs.update(image=images, noise_level=int(spec.extra.get("noise_level", 20)))
        return kwargs
    if spec.kind == "instruct":
        # InstructPix2Pix works at the image's size; image_guidance says how close to stay to it.
        kwargs.update(image=images, image_guidance_scale=float(spec.extra.get("image_guidance", 1.5)))
        return kwargs
    width, height = flat[0][0].work_size
    kwargs.update(width=width, height=height)
    if spec.kind == "inpaint":
        kwargs.update(image=images, mask_image=[plan.mask for plan, _ in flat],
                      strength=float(settings["strength"]))
    elif spec.kind == "img2img":
        kwargs.update(image=images, strength=float(settings["strength"]))
    if spec.controlnets:
        kwargs.update(_controls(spec, flat, [float(s) for s in settings["scales"]]))
    if spec.ip_adapter:
        assert reference_embeds is not None
        positive = reference_embeds([plan.reference for plan, _ in flat])
        embeds = torch.cat([torch.zeros_like(positive), positive]) if kwargs["guidance_scale"] > 1 else positive
        kwargs["ip_adapter_image_embeds"] = [embeds]
    return kwargs


def _controls(spec: TaskSpec, flat: list[Item], scales: list[float]) -> dict[str, Any]:
    per_control = [[plan.controls[i] for plan, _ in flat] for i in range(len(spec.controlnets))]
    if spec.controlnets[0].mode is not None:
        # A ControlNet Union: one model, a list of control images (each a batch) and their modes.
        return {"control_image": per_control, "control_mode": [c.mode for c in spec.controlnets],
                "controlnet_conditioning_scale": scales}
    key = "control_image" if spec.kind in ("inpaint", "img2img") else "image"
    # Several ControlNets take one tensor each, (batch, 3, H, W) in [0, 1]: the pipelines
    # refuse a list of per-image lists there.
    images: Any = per_control[0] if len(per_control) == 1 else [as_batch(batch) for batch in per_control]
    return {key: images, "controlnet_conditioning_scale": scales[0] if len(scales) == 1 else scales}
