"""The registry: which pipeline, checkpoints and settings each task runs (data/diffusers_registry.json).

An operator swaps a checkpoint or tunes steps, guidance, ControlNet scales or the scheduler by
editing a copy of the file and pointing ROOMRENDER_DIFFUSERS_REGISTRY at it; no code changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roomrender.canonical.models import Task
from roomrender.catalog import load_data_file

PIPELINES = frozenset({
    "StableDiffusionPipeline",
    "StableDiffusionControlNetPipeline",
    "StableDiffusionInpaintPipeline",
    "StableDiffusionControlNetInpaintPipeline",
    "StableDiffusionImg2ImgPipeline",
    "StableDiffusionControlNetImg2ImgPipeline",
    "StableDiffusionUpscalePipeline",
    "segmentation",
    "matting",
})
# How the engine calls a task's pipeline: from noise, from an image, inpainting a mask, the x4
# upscaler, segmentation or matting (no diffusion).
PIPELINE_KINDS = frozenset({"text", "img2img", "inpaint", "upscale", "segmentation", "matting"})
MODEL_KINDS = frozenset({"sd", "sd_upscale", "controlnet", "segmentation", "depth", "ip_adapter", "lora",
                         "matting"})
# Kinds that run no diffusion: the engine answers their planned images as they are.
NO_DIFFUSION = frozenset({"segmentation", "matting"})
# Pipelines that a few-step (LCM) mode can run: the SD 1.5 ones.
FAST_PIPELINES = PIPELINES - {"StableDiffusionUpscalePipeline", "segmentation", "matting"}
CONTROL_INPUTS = frozenset({"lines", "segmentation", "segmentation_without_furniture", "depth", "canny"})
MASKS = frozenset({"spare_openings", "furniture", "given", "area", "outside", "product_ring"})
# Which preprocessor model a control input or a mask needs.
INPUT_MODELS = {"segmentation": "segmentation", "segmentation_without_furniture": "segmentation",
                "depth": "depth"}
MASK_MODELS = {"spare_openings": "segmentation", "furniture": "segmentation", "area": "segmentation"}


class RegistryError(ValueError):
    """The registry file is malformed."""


@dataclass(frozen=True)
class ModelSpec:
    key: str
    id: str
    kind: str
    subfolder: str | None = None
    weight_name: str | None = None
    image_encoder: str | None = None

    @property
    def label(self) -> str:
        return f"{self.id}/{self.subfolder}/{self.weight_name}" if self.weight_name else self.id


@dataclass(frozen=True)
class ControlSpec:
    model: str
    input: str
    scale: float


@dataclass(frozen=True)
class FastSpec:
    """The few-step mode a request picks with speed="fast": a distilled LoRA fused into a copy of
    the base UNet (LCM-LoRA), its scheduler, and the steps and guidance it was distilled for."""

    lora: str
    scheduler: str = "LCMScheduler"
    steps: int = 6
    guidance: float = 1.0


@dataclass(frozen=True)
class TaskSpec:
    task: Task
    pipeline: str
    kind: str
    base: str | None
    controlnets: tuple[ControlSpec, ...] = ()
    mask: str | None = None
    ip_adapter: str | None = None
    steps: int = 30
    guidance: float = 7.5
    strength: float = 1.0
    scheduler: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # None: speed="fast" only halves the steps.
    fast: FastSpec | None = None
    # The matting model that cuts a subject out (cutout's image, place's product); the coarse
    # subject mask it refines comes from the segmentation model.
    matting: str | None = None

    def model_keys(self) -> list[str]:
        """Every model this task needs, the preprocessors' included, in a stable order."""
        keys: list[str] = []
        wanted = [self.base, *(c.model for c in self.controlnets), self.ip_adapter]
        wanted += [INPUT_MODELS.get(c.input) for c in self.controlnets]
        wanted.append(MASK_MODELS.get(self.mask or ""))
        if self.kind == "segmentation" or self.matting:
            wanted.append("segmentation")
        wanted.append(self.matting)
        for key in wanted:
            if key and key not in keys:
                keys.append(key)
        return keys

    def optional_keys(self) -> list[str]:
        """Models the task runs without (the few-step LoRA: without it, speed="fast" halves steps)."""
        return [self.fast.lora] if self.fast else []


@dataclass(frozen=True)
class Registry:
    models: dict[str, ModelSpec]
    tasks: dict[Task, TaskSpec]
    resolution: int = 512
    max_batch_images: int = 4
    scheduler: str = "UniPCMultistepScheduler"

    def task(self, task: Task) -> TaskSpec:
        return self.tasks[task]

    def models_for(self, task: Task) -> list[ModelSpec]:
        return [self.models[key] for key in self.tasks[task].model_keys()]

    def optional_models_for(self, task: Task) -> list[ModelSpec]:
        return [self.models[key] for key in self.tasks[task].optional_keys()]


def _model(key: str, entry: dict[str, Any]) -> ModelSpec:
    if entry.get("kind") not in MODEL_KINDS:
        raise RegistryError(f"model {key!r}: kind must be one of {sorted(MODEL_KINDS)}")
    if not entry.get("id"):
        raise RegistryError(f"model {key!r} needs an id")
    return ModelSpec(key, entry["id"], entry["kind"], entry.get("subfolder"),
                     entry.get("weight_name"), entry.get("image_encoder"))


def _fast(name: str, entry: Any, models: dict[str, ModelSpec]) -> FastSpec | None:
    if not entry:
        return None
    if not isinstance(entry, dict) or entry.get("lora") not in models:
        raise RegistryError(f"{name}: `fast` needs a `lora` that `models` defines")
    if models[entry["lora"]].kind != "lora":
        raise RegistryError(f"{name}: the fast mode's model must be of kind lora")
    return FastSpec(entry["lora"], entry.get("scheduler", "LCMScheduler"), int(entry.get("steps", 6)),
                    float(entry.get("guidance", 1.0)))


def _task(name: str, entry: dict[str, Any], models: dict[str, ModelSpec],
          fast_default: Any = None) -> TaskSpec:
    try:
        task = Task(name)
    except ValueError:
        raise RegistryError(f"unknown task {name!r}") from None
    entry = dict(entry)
    pipeline = entry.pop("pipeline", None)
    if pipeline not in PIPELINES:
        raise RegistryError(f"task {name!r}: pipeline must be one of {sorted(PIPELINES)}")
    kind = entry.pop("kind", None)
    if kind not in PIPELINE_KINDS:
        raise RegistryError(f"task {name!r}: kind must be one of {sorted(PIPELINE_KINDS)}")
    controls = tuple(ControlSpec(c["model"], c["input"], float(c.get("scale", 1.0)))
                     for c in entry.pop("controlnets", []))
    for control in controls:
        if control.input not in CONTROL_INPUTS:
            raise RegistryError(f"task {name!r}: control input must be one of {sorted(CONTROL_INPUTS)}")
    mask = entry.pop("mask", None)
    if mask is not None and mask not in MASKS:
        raise RegistryError(f"task {name!r}: mask must be one of {sorted(MASKS)}")
    fast = entry.pop("fast", fast_default if pipeline in FAST_PIPELINES else None)
    spec = TaskSpec(
        task=task, pipeline=pipeline, kind=kind, base=entry.pop("base", None), controlnets=controls, mask=mask,
        ip_adapter=entry.pop("ip_adapter", None), steps=int(entry.pop("steps", 30)),
        guidance=float(entry.pop("guidance", 7.5)), strength=float(entry.pop("strength", 1.0)),
        scheduler=entry.pop("scheduler", None), extra=entry, fast=_fast(f"task {name!r}", fast, models),
        matting=entry.pop("matting", None),
    )
    if kind == "matting" and not spec.matting:
        raise RegistryError(f"task {name!r}: a matting task needs a `matting` model")
    if kind not in NO_DIFFUSION and not spec.base:
        raise RegistryError(f"task {name!r} needs a base model")
    for key in spec.model_keys() + spec.optional_keys():
        if key not in models:
            raise RegistryError(f"task {name!r} uses the model {key!r}, which `models` does not define")
    return spec


def parse_registry(data: dict[str, Any]) -> Registry:
    models = {key: _model(key, entry) for key, entry in data.get("models", {}).items()}
    defaults = data.get("defaults", {})
    tasks = {spec.task: spec for spec in
             (_task(name, entry, models, defaults.get("fast")) for name, entry in data.get("tasks", {}).items())}
    return Registry(models, tasks, int(defaults.get("resolution", 512)),
                    int(defaults.get("max_batch_images", 4)),
                    defaults.get("scheduler", "UniPCMultistepScheduler"))


def load_registry(path: Path | None = None) -> Registry:
    """The packaged registry, or the operator's file at `path`."""
    data = json.loads(path.read_text("utf-8")) if path else load_data_file("diffusers_registry.json")
    return parse_registry(data)
