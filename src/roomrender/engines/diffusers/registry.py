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
    "StableDiffusionInstructPix2PixPipeline",
    "StableDiffusionXLPipeline",
    "StableDiffusionXLInpaintPipeline",
    "StableDiffusionXLImg2ImgPipeline",
    "StableDiffusionXLControlNetUnionPipeline",
    "StableDiffusionXLControlNetUnionInpaintPipeline",
    "StableDiffusionXLControlNetUnionImg2ImgPipeline",
    "segmentation",
    "matting",
    "WanImageToVideoPipeline",
    "language",
    # Flow-matching transformer families, loaded whole (whole_pipelines.py).
    "FluxPipeline",
    "QwenImageEditPlusPipeline",
    "QwenImageEditPipeline",
    "ShapEImg2ImgPipeline",
    "Hunyuan3DDiTFlowMatchingPipeline",
})
# How the engine calls a task's pipeline: from noise, from an image, inpainting a mask, the x4
# upscaler, an instruction edit (InstructPix2Pix), segmentation or matting (no diffusion).
PIPELINE_KINDS = frozenset({"text", "img2img", "inpaint", "upscale", "instruct", "segmentation", "matting",
                            "image_edit", "video", "language", "mesh"})
MODEL_KINDS = frozenset({"sd", "sdxl", "sd_upscale", "controlnet", "controlnet_union", "segmentation", "depth",
                         "ip_adapter", "lora", "vae_tiny", "matting", "wan", "language", "flux",
                         "qwen_image", "shap_e", "hunyuan3d"})
# Model kinds loaded as one diffusers pipeline folder (transformer, VAE, text encoders), with
# quantization and offload decided for the memory budget (whole_pipelines.py).
WHOLE_PIPELINE_KINDS = frozenset({"flux", "qwen_image"})
# Image-to-3D pipelines (the object_3d task, objects.py): no few-step mode, no live previews.
MESH_PIPELINES = frozenset({"ShapEImg2ImgPipeline", "Hunyuan3DDiTFlowMatchingPipeline"})
# Kinds that run no diffusion: the engine answers their planned images as they are.
# `language`: a causal language model answers in words (chat; engines/diffusers/assistant.py).
NO_DIFFUSION = frozenset({"segmentation", "matting", "language"})
# Pipelines that a few-step (LCM) mode can run.
FAST_PIPELINES = PIPELINES - {"StableDiffusionUpscalePipeline", "StableDiffusionInstructPix2PixPipeline",
                              "segmentation", "matting", "WanImageToVideoPipeline", "language",
                              "FluxPipeline", "QwenImageEditPlusPipeline", "QwenImageEditPipeline"} - MESH_PIPELINES
CONTROL_INPUTS = frozenset({"lines", "segmentation", "segmentation_without_furniture", "depth", "canny"})
MASKS = frozenset({"spare_openings", "furniture", "given", "area", "outside", "product_ring"})
# Which preprocessor model a control input or a mask needs.
INPUT_MODELS = {"segmentation": "segmentation", "segmentation_without_furniture": "segmentation",
                "depth": "depth"}
MASK_MODELS = {"spare_openings": "segmentation", "furniture": "segmentation", "area": "segmentation"}
# The family the top-level `tasks` of the file form, unless `defaults.family` names it.
FIRST_FAMILY = "sd15"


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
    licence: str | None = None
    # Weights of this variant (`fp16`: `*.fp16.safetensors`) when the repository has them.
    variant: str | None = None
    # A model whose VAE, text encoders and tokenizers this one uses (an inpainting UNet's base).
    shares: str | None = None
    # ControlNet Union: its control types' indices by name.
    control_types: dict[str, int] = field(default_factory=dict, hash=False)

    @property
    def label(self) -> str:
        return "/".join(part for part in (self.id, self.subfolder, self.weight_name) if part)


@dataclass(frozen=True)
class ControlSpec:
    model: str
    input: str
    scale: float
    # ControlNet Union: the control type's index (None for a plain ControlNet).
    mode: int | None = None


@dataclass(frozen=True)
class FastSpec:
    """The few-step mode a request picks with speed="fast": a distilled LoRA fused into a copy of
    the base UNet (LCM-LoRA), its scheduler, and the steps and guidance it was distilled for."""

    lora: str
    scheduler: str = "LCMScheduler"
    steps: int = 6
    guidance: float = 1.0


@dataclass(frozen=True)
class PreviewSpec:
    """Live previews: every `every` steps the latents are decoded by a tiny autoencoder (TAESD)
    into an image of at most `max_side` pixels."""

    model: str
    every: int = 5
    max_side: int = 256


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
    scheduler: str = "UniPCMultistepScheduler"
    extra: dict[str, Any] = field(default_factory=dict)
    # None: speed="fast" only halves the steps.
    fast: FastSpec | None = None
    family: str = FIRST_FAMILY
    # The working size's long side.
    resolution: int = 512
    preview: PreviewSpec | None = None
    # The matting model that cuts a subject out (cutout's image, place's product); the coarse
    # subject mask it refines comes from the segmentation model.
    matting: str | None = None
    # Another pipeline of the same task ("guide": text_to_image from a guide image, guides.py).
    variant: str = ""

    @property
    def name(self) -> str:
        """`family:task` (`+variant`), the name of this pipeline in logs and the model store."""
        return f"{self.family}:{self.task.value}" + (f"+{self.variant}" if self.variant else "")

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
        """Models the task runs without: the few-step LoRA (without it, speed="fast" halves the
        steps) and the live previews' tiny autoencoder (without it, no previews)."""
        return [key for key in (self.fast.lora if self.fast else None, self.preview.model if self.preview else None)
                if key]


@dataclass(frozen=True)
class Family:
    """A model family (SD 1.5, SDXL): what each task runs in it."""

    name: str
    tasks: dict[Task, TaskSpec]
    resolution: int = 512
    scheduler: str = "UniPCMultistepScheduler"
    # What the family's weights take (`defaults.memory`: GB in bf16, quantized, and how it is
    # quantized); `models check` states it, whole_pipelines.py plans loading by it.
    memory: dict[str, Any] = field(default_factory=dict, hash=False)


class UnknownFamily(KeyError):
    pass


@dataclass(frozen=True)
class Registry:
    models: dict[str, ModelSpec]
    families: dict[str, Family]
    default_family: str = FIRST_FAMILY
    max_batch_images: int = 4
    # Licences (lower case) that forbid commercial use; `models check` flags the models under them.
    non_commercial: frozenset[str] = frozenset()
    # Licences (lower case) a user must accept by name to pull a model (`models pull
    # --accept-licence`): never a default, flagged by `models check`.
    gated: frozenset[str] = frozenset()

    def family(self, name: str | None = None) -> Family:
        try:
            return self.families[name or self.default_family]
        except KeyError:
            raise UnknownFamily(name) from None

    def spec_for(self, task: Task, family: str | None = None, default: str | None = None) -> TaskSpec | None:
        """What runs `task`: in `family` when named; else in the `default` family (the server's)
        when it has the task, else in the first family that has it."""
        if family is not None:
            return self.family(family).tasks.get(task)
        preferred = self.families.get(default or self.default_family)
        if preferred is not None and task in preferred.tasks:
            return preferred.tasks[task]
        return next((f.tasks[task] for f in self.families.values()
                     if task in f.tasks and not self.is_gated_task(f.tasks[task])), None)

    def serving(self, default: str | None = None) -> dict[Task, TaskSpec]:
        """Each task a request that names no family runs, and in which family."""
        found = {task: self.spec_for(task, default=default) for task in Task}
        return {task: spec for task, spec in found.items() if spec is not None}

    @property
    def tasks(self) -> dict[Task, TaskSpec]:
        return self.serving()

    def task(self, task: Task, family: str | None = None) -> TaskSpec:
        spec = self.spec_for(task, family)
        if spec is None:
            raise KeyError(task)
        return spec

    @property
    def resolution(self) -> int:
        return self.family().resolution

    def all_specs(self) -> list[TaskSpec]:
        return [spec for family in self.families.values() for spec in family.tasks.values()]

    def models_of(self, spec: TaskSpec) -> list[ModelSpec]:
        return [self.models[key] for key in spec.model_keys()]

    def optional_models_of(self, spec: TaskSpec) -> list[ModelSpec]:
        return [self.models[key] for key in spec.optional_keys()]

    def models_for(self, task: Task) -> list[ModelSpec]:
        return self.models_of(self.task(task))

    def optional_models_for(self, task: Task) -> list[ModelSpec]:
        return self.optional_models_of(self.task(task))

    def is_non_commercial(self, spec: ModelSpec) -> bool:
        return (spec.licence or "").lower() in self.non_commercial

    def is_gated(self, spec: ModelSpec) -> bool:
        return (spec.licence or "").lower() in self.gated

    def is_gated_task(self, spec: TaskSpec) -> bool:
        return any(self.is_gated(model) for model in self.models_of(spec))


def _model(key: str, entry: dict[str, Any]) -> ModelSpec:
    if entry.get("kind") not in MODEL_KINDS:
        raise RegistryError(f"model {key!r}: kind must be one of {sorted(MODEL_KINDS)}")
    if not entry.get("id"):
        raise RegistryError(f"model {key!r} needs an id")
    types = entry.get("control_types", {})
    if entry["kind"] == "controlnet_union" and not types:
        raise RegistryError(f"model {key!r}: a ControlNet Union needs its `control_types`")
    return ModelSpec(key, entry["id"], entry["kind"], entry.get("subfolder"),
                     entry.get("weight_name"), entry.get("image_encoder"), entry.get("licence"),
                     entry.get("variant"), entry.get("shares"), {k: int(v) for k, v in types.items()})


def _fast(name: str, entry: Any, models: dict[str, ModelSpec]) -> FastSpec | None:
    if not entry:
        return None
    if not isinstance(entry, dict) or entry.get("lora") not in models:
        raise RegistryError(f"{name}: `fast` needs a `lora` that `models` defines")
    if models[entry["lora"]].kind != "lora":
        raise RegistryError(f"{name}: the fast mode's model must be of kind lora")
    return FastSpec(entry["lora"], entry.get("scheduler", "LCMScheduler"), int(entry.get("steps", 6)),
                    float(entry.get("guidance", 1.0)))


def _preview(name: str, entry: Any, models: dict[str, ModelSpec]) -> PreviewSpec | None:
    if not entry:
        return None
    if not isinstance(entry, dict) or entry.get("model") not in models or models[entry["model"]].kind != "vae_tiny":
        raise RegistryError(f"{name}: `preview` needs a `model` of kind vae_tiny that `models` defines")
    return PreviewSpec(entry["model"], max(1, int(entry.get("every", 5))), int(entry.get("max_side", 256)))


def _control(name: str, entry: dict[str, Any], models: dict[str, ModelSpec]) -> ControlSpec:
    if entry.get("input") not in CONTROL_INPUTS:
        raise RegistryError(f"task {name!r}: control input must be one of {sorted(CONTROL_INPUTS)}")
    model = models.get(entry.get("model", ""))
    mode = None
    if model is not None and model.kind == "controlnet_union":
        kind = entry.get("type")
        if kind not in model.control_types:
            raise RegistryError(f"task {name!r}: a ControlNet Union control needs a `type`, one of "
                                f"{sorted(model.control_types)}")
        mode = model.control_types[kind]
    return ControlSpec(entry.get("model", ""), entry["input"], float(entry.get("scale", 1.0)), mode)


def _task(name: str, entry: dict[str, Any], models: dict[str, ModelSpec], defaults: dict[str, Any],
          family: str) -> TaskSpec:
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
    controls = tuple(_control(name, c, models) for c in entry.pop("controlnets", []))
    if len({c.mode is None for c in controls}) > 1:
        raise RegistryError(f"task {name!r}: ControlNet Union and plain ControlNets do not mix")
    mask = entry.pop("mask", None)
    if mask is not None and mask not in MASKS:
        raise RegistryError(f"task {name!r}: mask must be one of {sorted(MASKS)}")
    fast = entry.pop("fast", defaults.get("fast") if pipeline in FAST_PIPELINES else None)
    # A video's previews come from its own VAE (video.py), not from a tiny SD autoencoder.
    diffusion = kind not in NO_DIFFUSION and kind not in ("upscale", "video", "mesh")
    preview = entry.pop("preview", defaults.get("preview") if diffusion else None)
    spec = TaskSpec(
        task=task, pipeline=pipeline, kind=kind, base=entry.pop("base", None), controlnets=controls, mask=mask,
        ip_adapter=entry.pop("ip_adapter", None), steps=int(entry.pop("steps", 30)),
        guidance=float(entry.pop("guidance", 7.5)), strength=float(entry.pop("strength", 1.0)),
        scheduler=entry.pop("scheduler", defaults.get("scheduler", "UniPCMultistepScheduler")), extra=entry,
        fast=_fast(f"task {name!r}", fast, models),
        family=family, resolution=int(defaults.get("resolution", 512)),
        preview=_preview(f"task {name!r}", preview, models),
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


def _family(name: str, tasks: dict[str, Any], models: dict[str, ModelSpec], defaults: dict[str, Any]) -> Family:
    specs = {spec.task: spec for spec in (_task(task, entry, models, defaults, name) for task, entry in tasks.items())}
    return Family(name, specs, int(defaults.get("resolution", 512)),
                  defaults.get("scheduler", "UniPCMultistepScheduler"), dict(defaults.get("memory") or {}))


def parse_registry(data: dict[str, Any]) -> Registry:
    """The file's top-level `tasks` are the first family (`defaults.family`, sd15); `families`
    adds others, each with its `defaults` (over the top-level ones) and `tasks`."""
    models = {key: _model(key, entry) for key, entry in data.get("models", {}).items()}
    for spec in models.values():
        if spec.shares is not None and spec.shares not in models:
            raise RegistryError(f"model {spec.key!r} shares the parts of {spec.shares!r}, "
                                "which `models` does not define")
    defaults = data.get("defaults", {})
    first = defaults.get("family", FIRST_FAMILY)
    families = {first: _family(first, data.get("tasks", {}), models, defaults)}
    for name, entry in data.get("families", {}).items():
        if name in families:
            raise RegistryError(f"the family {name!r} is defined twice")
        families[name] = _family(name, entry.get("tasks", {}), models, {**defaults, **entry.get("defaults", {})})
    return Registry(models, families, first, int(defaults.get("max_batch_images", 4)),
                    frozenset(name.lower() for name in data.get("non_commercial_licences", [])),
                    frozenset(name.lower() for name in data.get("licence_gated", [])))


def load_registry(path: Path | None = None) -> Registry:
    """The packaged registry, or the operator's file at `path`."""
    data = json.loads(path.read_text("utf-8")) if path else load_data_file("diffusers_registry.json")
    return parse_registry(data)
