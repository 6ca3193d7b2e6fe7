"""DiffusersEngine: Stable Diffusion 1.5 and SDXL pipelines with ControlNets, from local weights.

Each task runs what data/diffusers_registry.json says for the job's model family (pipeline
class, checkpoints, steps, guidance, ControlNet scales, scheduler); a job names a family
(`model`) or runs in the server's (ROOMRENDER_DIFFUSERS_FAMILY), else in the first family that
has its task. Inputs are prepared by `plan.py` (working size, masks, control images, prompts),
the call's arguments by `calls.py`, run in one pipeline call per batch (every job's `n` variants
together, one seeded generator per image), then resized to the asked size and composited so that
what the mask keeps (windows, doors, the unedited area, the original canvas of an expand) stays
as it was.

Throughput (issue 7):
- A batch is every job of a claim whose call settings match (`batch_key`), each job with its own
  `n`: one pipeline call renders all their images, image i of a job seeded `seed + i` through its
  own torch.Generator, so a job gets the images it would get alone (within fp tolerance).
- `generate` prepares a batch (preprocessors, masks, control images, prompts) in the caller's
  thread, hands the pipeline call to the engine's one GPU thread, and resizes/composites the
  results back in the caller's thread, so two workers of one process (`serve --workers 2`)
  overlap one batch's CPU work with another's denoising.
- ROOMRENDER_DIFFUSERS_COMPILE turns on the compiled path (compiled.py): working sizes bucketed,
  batches padded to fixed sizes, compiled at worker start by `warm_up()`.
- speed="fast" runs the registry's few-step mode (LCM-LoRA + LCM scheduler) when its weights are
  here.

Issue 17: prompts of any length (conditioning.py), live previews every few steps (previews.py),
and the loaded models kept within ROOMRENDER_DIFFUSERS_MEMORY_GB (cache.py).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image

from roomrender.canonical.errors import (
    InvalidRequest,
    RoomrenderError,
    ServerFault,
    Unsupported,
)
from roomrender.canonical.models import GenerationRequest, Task
from roomrender.config import Settings
from roomrender.engines.base import (
    BatchCanceled,
    BatchContext,
    EngineJob,
    JobResult,
    RenderedImage,
)
from roomrender.engines.diffusers import flux, qwen_edit, scenes, video
from roomrender.engines.diffusers import live_previews as previews
from roomrender.engines.diffusers.assistant import Assistant, is_chat
from roomrender.engines.diffusers.cache import GIB
from roomrender.engines.diffusers.calls import call_arguments
from roomrender.engines.diffusers.compiled import (
    Compiler,
    padded_batch_size,
    parse_batch_sizes,
    parse_sizes,
    use_compile_cache,
)
from roomrender.engines.diffusers.conditioning import chunk_count
from roomrender.engines.diffusers.guides import guided
from roomrender.engines.diffusers.matting import Matter
from roomrender.engines.diffusers.objects import ObjectMaker, hunyuan_unavailable
from roomrender.engines.diffusers.painted_vectors import painting, painting_job, paints_first, traced
from roomrender.engines.diffusers.patterns import circular_convolutions
from roomrender.engines.diffusers.plan import Plan, Planner
from roomrender.engines.diffusers.preprocessors import Preprocessors
from roomrender.engines.diffusers.prompts import build_prompt
from roomrender.engines.diffusers.registry import NO_DIFFUSION, Registry, TaskSpec, UnknownFamily, load_registry
from roomrender.engines.diffusers.settings import DiffusersSettings
from roomrender.engines.diffusers.store import ModelStore, missing_models_error
from roomrender.engines.diffusers.whole_pipelines import is_whole
from roomrender.engines.diffusers.without_models import NO_MODEL_TASKS, run_without_models

log = logging.getLogger("roomrender.engines.diffusers")

DTYPES = {"float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32}


class GenerationFailed(ServerFault):
    code = "generation_failed"


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


def default_budget_bytes(device: torch.device) -> int:
    """What the device has, less a margin for activations (a fifth, at least 4 GiB)."""
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
    else:
        import os

        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(total - max(total // 5, 4 * GIB), total // 4)


def is_out_of_memory(failure: BaseException) -> bool:
    return isinstance(failure, torch.OutOfMemoryError) or "out of memory" in str(failure).lower()


@dataclass
class Prepared:
    """A batch ready for the GPU: the results known already (failed inputs) and the plans."""

    batch: list[EngineJob]
    spec: TaskSpec
    results: list[JobResult | None]
    plans: list[tuple[int, Plan]]


class DiffusersEngine:
    name = "diffusers"

    def __init__(self, registry: Registry, models_dir: Path | None, *, device: str = "auto",
                 dtype: str = "auto", compile_mode: str = "off",
                 buckets: list[tuple[int, int]] | None = None,
                 batch_sizes: list[int] | None = None, warmup_tasks: list[str] | None = None,
                 max_batch_images: int = 0, compile_cache: Path | None = None, family: str | None = None,
                 memory_budget_bytes: int | None = None) -> None:
        self.registry = registry
        self.models_dir = models_dir
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.max_batch_images = max_batch_images or registry.max_batch_images
        self.family = family or registry.default_family
        if self.family not in registry.families:
            raise ValueError(f"ROOMRENDER_DIFFUSERS_FAMILY: no family {self.family!r} in the registry "
                             f"({', '.join(registry.families)})")
        budget = memory_budget_bytes if memory_budget_bytes is not None else default_budget_bytes(self.device)
        self.store = ModelStore(registry, models_dir, self.device, self.dtype, budget_bytes=budget)
        self.assistant = Assistant(registry, self.store, self.family)
        self.pre = Preprocessors(self.store.segmentation, self.store.depth, self.device, self.dtype)
        self.compiler = Compiler(compile_mode)
        self.store.parts.on_evict(lambda _key, module: self.compiler.forget(module))
        if self.compiler.enabled and compile_cache is not None:
            use_compile_cache(compile_cache)
        # Fixed working sizes and batch sizes only on the compiled path, where shapes must repeat.
        resolution = registry.family(self.family).resolution
        self.buckets = (buckets or [(resolution, resolution)]) if self.compiler.enabled else None
        self.batch_sizes = (batch_sizes or [1, 2, 4, 8]) if self.compiler.enabled else None
        self.warmup_tasks = warmup_tasks if warmup_tasks is not None else ["restyle"]
        self.planner = Planner(registry, self.pre, buckets=self.buckets, fast_ready=self.store.fast_ready,
                               cut=self.cut)
        # One batch at a time on the GPU, always from this one thread: pipelines and schedulers
        # are not thread-safe, and CUDA graphs are recorded per thread (those recorded at warm-up
        # are replayed for every worker's batches).
        self._gpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpu")
        self.objects = ObjectMaker(self.store, self.cut, self.device, self._gpu)

    @classmethod
    def from_settings(cls, settings: Settings) -> DiffusersEngine:
        registry_path = getattr(settings, "diffusers_registry", None)
        own = DiffusersSettings.read(settings)
        warmup = [t.strip() for t in own.warmup_tasks.split(",") if t.strip()]
        return cls(load_registry(registry_path), settings.models_dir,
                   device=getattr(settings, "diffusers_device", "auto"),
                   dtype=getattr(settings, "diffusers_dtype", "auto"),
                   compile_mode=own.compile, buckets=parse_sizes(own.buckets) or None,
                   batch_sizes=parse_batch_sizes(own.batch_sizes), warmup_tasks=warmup or None,
                   max_batch_images=own.max_batch_images,
                   compile_cache=settings.data_dir / "torch-compile-cache", family=own.family or None,
                   memory_budget_bytes=int(own.memory_gb * GIB) if own.memory_gb > 0 else None)

    # -- worker start ------------------------------------------------------------------------

    def warm_up(self) -> list[dict[str, Any]]:
        """Load the warm-up tasks' models and run each once, so that no user's request pays
        for loading (or, on the compiled path, compiling: every bucket at every batch size, in
        both speeds when the few-step LoRA is here). A task whose weights are missing is skipped.
        Returns what ran, with timings (also logged)."""
        runs: list[dict[str, Any]] = []
        for name in self.warmup_tasks:
            # `task` (in the server's family) or `family:task`.
            family, _, task_name = name.rpartition(":")
            try:
                task = Task(task_name)
                spec = self.registry.spec_for(task, family or None, self.family)
            except (ValueError, UnknownFamily):
                log.warning("warm-up: unknown task %r", name)
                continue
            # Nothing to compile without diffusion; a place needs a product and boxes.
            if spec is None or spec.kind in NO_DIFFUSION or task == Task.place:
                continue
            if self.store.missing(spec):
                log.warning("warm-up: %s skipped, weights missing", name)
                continue
            speeds: list[Literal["quality", "fast"]] = (
                ["quality", "fast"] if self.store.fast_ready(spec) else ["quality"])
            sizes = self.buckets or [(spec.resolution, spec.resolution)]
            counts = self.batch_sizes or [1]
            for speed in speeds:
                for width, height in sizes:
                    for count in counts:
                        started = time.perf_counter()
                        job = warmup_job(task, width, height, count, speed, family=spec.family)
                        results = self.generate([job], _NO_CONTEXT)
                        failure = next((r for r in results if isinstance(r, Exception)), None)
                        seconds = time.perf_counter() - started
                        runs.append({"task": spec.name, "speed": speed, "size": f"{width}x{height}",
                                     "batch": count, "seconds": round(seconds, 2),
                                     "error": str(failure) if failure else None})
                        log.info("warm-up %s %s %dx%d batch %d: %.1fs%s", spec.name, speed, width, height,
                                 count, seconds, f" FAILED {failure}" if failure else "")
        return runs

    # -- the Engine protocol --------------------------------------------------------------

    def supported_tasks(self) -> frozenset[Task]:
        return frozenset(self.registry.serving(self.family)) | NO_MODEL_TASKS

    def spec_for(self, request: GenerationRequest) -> TaskSpec:
        """What runs the request: its task in its family (see Registry.spec_for)."""
        try:
            spec = self.registry.spec_for(request.task, request.model, self.family)
        except UnknownFamily:
            raise InvalidRequest(f"unknown model {request.model!r}; this server has: "
                                 f"{', '.join(self.registry.families)}", code="unknown_model") from None
        if spec is None:
            where = f"the model {request.model!r}" if request.model else "the diffusers registry"
            raise Unsupported(f"{where} has no pipeline for the task {request.task.value!r}")
        if request.task == Task.text_to_image and request.image:
            return guided(spec)
        return spec

    def validate(self, request: GenerationRequest) -> None:
        if paints_first(request):
            request = painting(request)
        if request.task in NO_MODEL_TASKS:
            return
        spec = self.spec_for(request)
        if spec.kind == "mesh" and spec.pipeline != "ShapEImg2ImgPipeline":
            raise hunyuan_unavailable()
        missing = self.store.missing(spec)
        if missing:
            raise missing_models_error(spec.name, missing, self.models_dir)

    def batch_key(self, request: GenerationRequest, width: int | None, height: int | None) -> str:
        """Jobs that can share one pipeline call: same family, task, sizes, call settings and
        prompt length in 77-token chunks (see conditioning.py). `diffusers:<family>:<task>` heads
        it, so `roomrender worker --pipelines diffusers:sdxl` keeps a GPU to one family."""
        if paints_first(request):
            return self.batch_key(painting(request), width, height) + ":vector"
        if request.task in NO_MODEL_TASKS:
            return f"{self.name}:-:{request.task.value}"
        spec = self.spec_for(request)
        if is_chat(request) or spec.kind == "mesh":
            return f"{self.name}:{spec.family}:{request.task.value}"
        settings = self.planner.call_settings(request, spec)
        if spec.base is not None and spec.kind != "video" and not is_whole(self.registry, spec):
            prompt = build_prompt(request)
            settings["chunks"] = chunk_count(self.store.tokenizer(spec), [prompt.positive, prompt.negative])
        parts = [self.name, spec.family, request.task.value + (f"+{spec.variant}" if spec.variant else ""),
                 f"{width}x{height}",
                 f"out{request.width}x{request.height}", f"ratio{request.aspect_ratio}", f"x{request.scale}",
                 request.expand.model_dump_json() if request.expand else "-",
                 self._crop_key(request, width, height),
                 ",".join(f"{k}={v}" for k, v in sorted(settings.items()))]
        return ":".join(parts)

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        if batch and paints_first(batch[0].request):
            return traced(self.generate([painting_job(job) for job in batch], context))
        if batch and batch[0].request.task in NO_MODEL_TASKS:
            return run_without_models(batch, context)
        if batch and batch[0].request.task == Task.video:
            return self._gpu.submit(self._clips, batch, context).result()
        if batch and is_chat(batch[0].request):
            spec = self.spec_for(batch[0].request)
            return self._gpu.submit(self.assistant.answer_all, spec, batch, context).result()
        if batch and batch[0].request.task == Task.object_3d:
            return self._objects(batch, context)
        self.pre.clear()
        try:
            self._gpu.submit(self.assistant.rewrite_prompts, batch).result()
            prepared = self.prepare(batch)
            images = self._gpu.submit(self.denoise, prepared, context).result()
            return self.finish(prepared, images)
        except BatchCanceled:
            self.store.release()
            raise
        except Exception as failure:
            log.exception("diffusers batch of %d failed", len(batch))
            self.store.release()
            error: Exception = failure
            if is_out_of_memory(failure):
                count = sum(job.request.n for job in batch)
                error = GenerationFailed(
                    f"the GPU ran out of memory rendering {count} image(s) at this size; "
                    "retry with fewer images (n) or a smaller image",
                    code="out_of_memory")
            elif not isinstance(failure, RoomrenderError):
                error = GenerationFailed(f"generation failed: {type(failure).__name__}: {failure}")
            return [error for _ in batch]
        finally:
            self.pre.clear()

    def _clips(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        """A video batch (video.py), on the GPU thread: one clip per job."""
        self.store.parts.begin_batch()
        try:
            spec = self.spec_for(batch[0].request)
            return video.render_clips(self.store.pipeline(spec), spec, batch, context, self.device)
        except Exception as failure:
            log.exception("diffusers video batch failed")
            self.store.release()
            error: Exception = failure
            if is_out_of_memory(failure):
                error = GenerationFailed("the GPU ran out of memory rendering this clip; retry shorter, "
                                         "or at a lower resolution", code="out_of_memory")
            elif not isinstance(failure, RoomrenderError):
                error = GenerationFailed(f"generation failed: {type(failure).__name__}: {failure}")
            return [error for _ in batch]

    def _objects(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        """object_3d (objects.py): each job's photo to a GLB."""
        self.pre.clear()
        try:
            return self.objects.generate(batch, [self.spec_for(job.request) for job in batch], context)
        finally:
            self.pre.clear()
            self.store.release()

    def _crop_key(self, request: GenerationRequest, width: int | None, height: int | None) -> str:
        """A place renders a crop around its area: jobs batch when their crops' sizes match."""
        if request.task != Task.place or width is None or height is None or request.placement is None:
            return "-"
        crop = self.planner.place_crop(request, width, height, self.spec_for(request))
        return f"crop{crop.w}x{crop.h}"

    def cut(self, spec: TaskSpec, images: list[Image.Image]) -> list[Image.Image]:
        """The subjects of `images` cut out (RGBA), with the task's matting models."""
        assert spec.matting is not None
        key = spec.matting
        matter = Matter(self.pre, lambda: self.store.matting(key), self.device, self.dtype,
                        resolution=spec.resolution,
                        unknown_band=float(spec.extra.get("unknown_band", 0.015)),
                        matting_side=int(spec.extra.get("matting_side", 1024)))
        return matter.cut(images)

    # -- running a batch --------------------------------------------------------------------

    def prepare(self, batch: list[EngineJob]) -> Prepared:
        """The CPU side of a batch (and its preprocessors' forward passes), outside the GPU lock."""
        self.store.parts.begin_batch()
        spec = self.spec_for(batch[0].request)
        results: list[JobResult | None] = [None] * len(batch)
        plans: list[tuple[int, Plan]] = []
        self.planner.warm(batch, spec)
        for index, job in enumerate(batch):
            try:
                plans.append((index, scenes.plan(self.planner, job, spec) or self.planner.plan(job, spec)))
            except Exception as failure:
                results[index] = failure
        return Prepared(batch, spec, results, plans)

    def denoise(self, prepared: Prepared, context: BatchContext) -> list[list[Image.Image]]:
        """The GPU side: one pipeline call; the raw images of each plan, in order."""
        batch, spec, plans = prepared.batch, prepared.spec, prepared.plans
        job_ids = [batch[i].job_id for i, _ in plans]
        if spec.kind in NO_DIFFUSION:
            context.progress(job_ids, 1.0)
            return [[] for _ in plans]
        if not plans:
            return []
        return self._run(spec, [p for _, p in plans], job_ids, context)

    def finish(self, prepared: Prepared, images: list[list[Image.Image]]) -> list[JobResult]:
        """Back to the asked sizes, composited (CPU, outside the GPU lock)."""
        results = prepared.results
        for (index, plan), raw in zip(prepared.plans, images, strict=True):
            if prepared.spec.kind in NO_DIFFUSION:
                rendered = list(plan.segments)
            else:
                rendered = [RenderedImage(self.planner.finish(plan, image)) for image in raw]
            results[index] = self.planner.control_output(plan) + plan.extra + rendered
        return [r if r is not None else GenerationFailed("no result") for r in results]

    def _run(self, spec: TaskSpec, plans: list[Plan], job_ids: list[str],
             context: BatchContext) -> list[list[Image.Image]]:
        """One pipeline call for every variant of every job; the images grouped per job."""
        if len(plans) > 1 and qwen_edit.one_job_per_call(spec):
            return [self._run(spec, [plan], [job_id], context)[0] for plan, job_id in zip(plans, job_ids, strict=True)]
        settings = plans[0].settings
        fast = bool(settings.get("fast"))
        pipeline = self.store.pipeline(spec, fast)
        compiled = self.compiler.enabled and spec.kind != "upscale"
        if compiled:
            pipeline = self.compiler.prepare(pipeline)
        pipeline.scheduler = self.store.new_scheduler(spec, fast)
        flat = [(plan, variant) for plan in plans for variant in range(plan.n)]
        real = len(flat)
        if compiled and self.batch_sizes:
            # Throw-away copies of the last image fill the batch up to a size compiled at warm-up.
            flat += [flat[-1]] * (padded_batch_size(real, self.batch_sizes) - real)
        steps = int(settings["steps"])
        kwargs = call_arguments(spec, pipeline, flat, settings,
                                lambda images: self.store.reference_embeds(spec, images))

        def report(step: int, total: int) -> None:
            context.progress(job_ids, 0.05 + 0.9 * min(1.0, (step + 1) / max(total, 1)))

        preview = self._previewer(spec, plans, job_ids, context)
        tiler = flux.Tiler(pipeline, *plans[0].work_size) if flux.is_tileable(spec) else None
        if spec.kind == "upscale":
            kwargs.update(callback=lambda step, _t, _latents: report(step, steps), callback_steps=1)
        else:
            def on_step_end(pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                if compiled:
                    self.compiler.step_done()
                total = getattr(pipe, "num_timesteps", None) or steps
                report(step, total)
                if preview is not None:
                    preview(step, total, tensors["latents"])
                return tiler.step(step, total, tensors) if tiler is not None else tensors

            kwargs["callback_on_step_end"] = on_step_end
        # A pattern's tile wraps: its convolutions pad circularly for this call only (a UNet
        # pipeline's UNet and VAE; FLUX's VAE, its latents rolled between steps by the tiler).
        wrap = plans[0].request.task == Task.pattern and tiler is None
        with (torch.inference_mode(),
              circular_convolutions(*((pipeline.unet, pipeline.vae) if wrap else ())),
              flux.circular_vae(pipeline.vae) if tiler is not None else nullcontext()):
            output = pipeline(**kwargs)
        images = list(output.images)[:real]
        grouped: list[list[Image.Image]] = []
        for plan in plans:
            grouped.append(images[: plan.n])
            images = images[plan.n:]
        return grouped

    def _previewer(self, spec: TaskSpec, plans: list[Plan], job_ids: list[str],
                   context: BatchContext) -> Any:
        """(step, total, latents) → hands each job's first image to the context, when due."""
        if spec.preview is None or not context.wants_previews or not self.store.preview_ready(spec):
            return None
        decoder = self.store.preview_decoder(spec)
        firsts, index = [], 0
        for plan in plans:
            firsts.append(index)
            index += plan.n
        every = spec.preview

        def preview(step: int, total: int, latents: torch.Tensor) -> None:
            if not previews.due(every, step, total):
                return
            for job_id, image in zip(job_ids, previews.decode(decoder, latents, firsts, every.max_side), strict=True):
                context.preview(job_id, image)

        return preview


_NO_CONTEXT = BatchContext(lambda _job, _fraction: None, lambda _job: False)


def warmup_job(task: Task, width: int, height: int, images: int,
               speed: Literal["quality", "fast"], family: str | None = None) -> EngineJob:
    """A synthetic job of `images` images at a working size: a grey room with a darker floor and
    a window, so that masks and control images are not empty."""
    room = Image.new("RGB", (width, height), (200, 196, 188))
    room.paste((120, 90, 60), (0, height * 2 // 3, width, height))
    room.paste((190, 215, 235), (width // 8, height // 5, width // 3, height // 2))
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (width // 4, height // 4, width * 3 // 4, height * 3 // 4))
    # A few steps are enough: the compiled graphs do not depend on the number of steps.
    request = GenerationRequest(
        task=task, image=None if task == Task.text_to_image else "warm-up", n=images, seed=0, steps=3,
        prompt="a living room", style="modern", color="#808080", area="wall", speed=speed,
        scale=2 if task == Task.upscale else None, model=family)
    if task == Task.text_to_image:
        # Unvalidated: a test bucket may be smaller than a request may ask.
        request = request.model_copy(update={"width": width, "height": height})
    inputs = {} if task == Task.text_to_image else {"image": room, "mask": mask, "reference_image": room}
    return EngineJob("warm-up", request, inputs)
__all__ = ["DiffusersEngine", "GenerationFailed", "Prepared", "warmup_job"]

