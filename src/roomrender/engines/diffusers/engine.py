"""DiffusersEngine: Stable Diffusion 1.5 pipelines with ControlNets, from local weights.

Each task runs what data/diffusers_registry.json says (pipeline class, checkpoints, steps,
guidance, ControlNet scales, scheduler). Inputs are prepared by `plan.py` (working size, masks,
control images, prompts), run in one pipeline call per batch (every job's `n` variants together,
one seeded generator per image), then resized to the asked size and composited so that what the
mask keeps (windows, doors, the unedited area, the original canvas of an expand) stays as it was.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from roomrender.config import Settings
from roomrender.engines.base import BatchCanceled, BatchContext, EngineJob, JobResult, RenderedImage
from roomrender.engines.diffusers.plan import Plan, Planner
from roomrender.engines.diffusers.preprocessors import Preprocessors
from roomrender.engines.diffusers.registry import Registry, TaskSpec, load_registry
from roomrender.engines.diffusers.store import ModelStore, missing_models_error
from roomrender.jobs.errors import InvalidRequest, RoomrenderError, Unsupported
from roomrender.jobs.models import GenerationRequest, Task

log = logging.getLogger("roomrender.engines.diffusers")

DTYPES = {"float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32}


class GenerationFailed(RoomrenderError):
    code = "generation_failed"
    status = 500


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """fp16 on CUDA unless asked otherwise (bf16 where the GPU has it and the operator wants it);
    float32 on CPU, where half precision is slow or unsupported."""
    if name != "auto":
        return DTYPES[name]
    return torch.float16 if device.type == "cuda" else torch.float32


def is_out_of_memory(failure: BaseException) -> bool:
    return isinstance(failure, torch.OutOfMemoryError) or "out of memory" in str(failure).lower()


class DiffusersEngine:
    name = "diffusers"

    def __init__(self, registry: Registry, models_dir: Path | None, *, device: str = "auto",
                 dtype: str = "auto") -> None:
        self.registry = registry
        self.models_dir = models_dir
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.max_batch_images = registry.max_batch_images
        self.store = ModelStore(registry, models_dir, self.device, self.dtype)
        self.pre = Preprocessors(self.store.segmentation, self.store.depth, self.device, self.dtype)
        self.planner = Planner(registry, self.pre)
        # One batch at a time: pipelines and their schedulers are not thread-safe.
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> DiffusersEngine:
        registry_path = getattr(settings, "diffusers_registry", None)
        return cls(load_registry(registry_path), settings.models_dir,
                   device=getattr(settings, "diffusers_device", "auto"),
                   dtype=getattr(settings, "diffusers_dtype", "auto"))

    # -- the Engine protocol --------------------------------------------------------------

    def supported_tasks(self) -> frozenset[Task]:
        return frozenset(self.registry.tasks)

    def validate(self, request: GenerationRequest) -> None:
        if request.task not in self.registry.tasks:
            raise Unsupported(f"the diffusers registry has no entry for the task {request.task.value!r}")
        spec = self.registry.task(request.task)
        if request.task == Task.edit and not (request.remove or request.prompt or request.materials):
            raise InvalidRequest("an edit needs a prompt or materials for the masked area, or remove=true")
        if request.task == Task.text_to_image and not request.prompt:
            raise InvalidRequest("text_to_image needs a prompt")
        missing = self.store.missing(spec)
        if missing:
            raise missing_models_error(request.task.value, missing, self.models_dir)

    def batch_key(self, request: GenerationRequest, width: int | None, height: int | None) -> str:
        """Jobs that can share one pipeline call: same task, sizes and call settings."""
        settings = self.planner.call_settings(request)
        parts = [self.name, request.task.value, f"{width}x{height}",
                 f"out{request.width}x{request.height}", f"x{request.scale}",
                 request.expand.model_dump_json() if request.expand else "-",
                 ",".join(f"{k}={v}" for k, v in sorted(settings.items()))]
        return ":".join(parts)

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        with self._lock:
            self.pre.clear()
            try:
                return self._generate(batch, context)
            except BatchCanceled:
                self.store.release()
                raise
            except Exception as failure:  # noqa: BLE001 - the batch fails, the worker keeps serving
                log.exception("diffusers batch of %d failed", len(batch))
                self.store.release()
                error: Exception = failure
                if is_out_of_memory(failure):
                    images = sum(job.request.n for job in batch)
                    error = GenerationFailed(
                        f"the GPU ran out of memory rendering {images} image(s) at this size; "
                        "retry with fewer images (n) or a smaller image",
                        code="out_of_memory")
                elif not isinstance(failure, RoomrenderError):
                    error = GenerationFailed(f"generation failed: {type(failure).__name__}: {failure}")
                return [error for _ in batch]
            finally:
                self.pre.clear()

    # -- running a batch --------------------------------------------------------------------

    def _generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        spec = self.registry.task(batch[0].request.task)
        results: list[JobResult | None] = [None] * len(batch)
        plans: list[tuple[int, Plan]] = []
        self.planner.warm(batch, spec)
        for index, job in enumerate(batch):
            try:
                plans.append((index, self.planner.plan(job, spec)))
            except Exception as failure:  # noqa: BLE001 - one bad input fails its job only
                results[index] = failure
        if spec.pipeline == "segmentation":
            for index, plan in plans:
                results[index] = plan.segments
            context.progress([batch[i].job_id for i, _ in plans], 1.0)
        elif plans:
            grouped = self._run(spec, [p for _, p in plans], [batch[i].job_id for i, _ in plans], context)
            for (index, plan), images in zip(plans, grouped, strict=True):
                results[index] = [RenderedImage(self.planner.finish(plan, image)) for image in images]
        return [r if r is not None else GenerationFailed("no result") for r in results]

    def _run(self, spec: TaskSpec, plans: list[Plan], job_ids: list[str],
             context: BatchContext) -> list[list[Image.Image]]:
        """One pipeline call for every variant of every job; the images grouped per job."""
        pipeline = self.store.pipeline(spec)
        pipeline.scheduler = self.store.new_scheduler(spec)
        flat = [(plan, variant) for plan in plans for variant in range(plan.n)]
        settings = plans[0].settings
        steps = int(settings["steps"])
        kwargs: dict[str, Any] = {
            "prompt": [plan.prompt.positive for plan, _ in flat],
            "negative_prompt": [plan.prompt.negative for plan, _ in flat],
            "num_inference_steps": steps,
            "guidance_scale": float(settings["guidance"]),
            "generator": [torch.Generator("cpu").manual_seed(plan.seed + variant) for plan, variant in flat],
            "output_type": "pil",
        }

        def report(step: int, total: int) -> None:
            context.progress(job_ids, 0.05 + 0.9 * min(1.0, (step + 1) / max(total, 1)))

        if spec.pipeline == "StableDiffusionUpscalePipeline":
            kwargs.update(image=[plan.init for plan, _ in flat],
                          noise_level=int(spec.extra.get("noise_level", 20)),
                          callback=lambda step, _t, _latents: report(step, steps), callback_steps=1)
        else:
            width, height = plans[0].work_size
            kwargs.update(width=width, height=height)

            def on_step_end(pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                report(step, getattr(pipe, "num_timesteps", None) or steps)
                return tensors

            kwargs["callback_on_step_end"] = on_step_end
            if "Inpaint" in spec.pipeline:
                kwargs.update(image=[plan.init for plan, _ in flat],
                              mask_image=[plan.mask for plan, _ in flat],
                              strength=float(settings["strength"]))
            if spec.controlnets:
                per_net = [[plan.controls[i] for plan, _ in flat] for i in range(len(spec.controlnets))]
                scales = [float(s) for s in settings["scales"]]
                key = "control_image" if "Inpaint" in spec.pipeline else "image"
                # Several ControlNets take one tensor each, (batch, 3, H, W) in [0, 1]: the
                # pipelines refuse a list of per-image lists there.
                kwargs[key] = per_net[0] if len(per_net) == 1 else [as_batch(images) for images in per_net]
                kwargs["controlnet_conditioning_scale"] = scales[0] if len(scales) == 1 else scales
            if spec.ip_adapter:
                positive = self.store.reference_embeds(spec, [plan.reference for plan, _ in flat])
                embeds = torch.cat([torch.zeros_like(positive), positive]) if kwargs["guidance_scale"] > 1 else positive
                kwargs["ip_adapter_image_embeds"] = [embeds]
        with torch.inference_mode():
            output = pipeline(**kwargs)
        images = list(output.images)
        grouped: list[list[Image.Image]] = []
        for plan in plans:
            grouped.append(images[: plan.n])
            images = images[plan.n:]
        return grouped


def as_batch(images: list[Image.Image]) -> torch.Tensor:
    arrays = [np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0 for image in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


__all__ = ["DiffusersEngine", "GenerationFailed"]
