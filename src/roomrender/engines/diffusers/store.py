"""Loads checkpoints once and assembles the pipelines the registry names, sharing components.

A base checkpoint's VAE, text encoder and UNet are loaded once and shared by every pipeline built
on it (text_to_image and sketch_render share one SD 1.5; restyle, stage, edit... share the
inpainting one). A pipeline with an IP-Adapter gets a UNet of its own, since attaching the adapter
changes the UNet's attention layers for everybody holding it.

The few-step mode (speed="fast") runs a second copy of the base UNet with the LCM-LoRA fused into
its weights: toggling a LoRA on the shared UNet per batch would cost a peft indirection on every
layer of every quality batch, break fused QKV projections and recompile a compiled UNet at each
switch; a fused copy costs 1.7 GB of GPU memory (fp16) per base and nothing per step.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch

from roomrender.canonical.errors import Unsupported
from roomrender.engines.diffusers.loading import LORA_WEIGHTS, fetch_hint, locate
from roomrender.engines.diffusers.registry import ModelSpec, Registry, TaskSpec


class ModelsMissing(Unsupported):
    code = "models_missing"


def missing_models_error(task: str, specs: list[ModelSpec], models_dir: Path | None) -> ModelsMissing:
    ids = ", ".join(spec.label for spec in specs)
    hints = "; ".join(fetch_hint(spec, models_dir) for spec in specs)
    return ModelsMissing(
        f"the task {task!r} needs model weights this server does not have: {ids}. "
        f"Fetch them on a machine with internet ({hints}) and copy them to the models folder; "
        "`roomrender models check` lists what each task needs.",
        details={"missing": [spec.label for spec in specs]},
    )


def clip_processor(folder: Path, encoder: Any) -> Any:
    """The encoder's image processor; IP-Adapter repos ship none (h94/IP-Adapter has only the
    model), so the CLIP defaults are used at the encoder's own input size."""
    from transformers import CLIPImageProcessor

    if (folder / "preprocessor_config.json").is_file():
        return CLIPImageProcessor.from_pretrained(folder, local_files_only=True)
    size = int(encoder.config.image_size)
    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


class ModelStore:
    def __init__(self, registry: Registry, models_dir: Path | None, device: torch.device,
                 dtype: torch.dtype) -> None:
        self.registry = registry
        self.models_dir = models_dir
        self.device = device
        self.dtype = dtype
        self._parts: dict[tuple[str, ...], Any] = {}
        self._pipelines: dict[str, Any] = {}
        self._lock = threading.RLock()

    # -- where --------------------------------------------------------------------------

    def missing(self, task_spec: TaskSpec) -> list[ModelSpec]:
        return [spec for spec in self.registry.models_for(task_spec.task)
                if not locate(spec, self.models_dir).present]

    def path(self, key: str) -> Path:
        spec = self.registry.models[key]
        found = locate(spec, self.models_dir)
        if not found.present or found.path is None:
            raise missing_models_error(key, [spec], self.models_dir)
        return found.path

    def _once(self, key: tuple[str, ...], load: Any) -> Any:
        with self._lock:
            if key not in self._parts:
                self._parts[key] = load()
            return self._parts[key]

    def _ready(self, model: Any) -> Any:
        model = model.to(self.device)
        model.eval()
        model.requires_grad_(False)
        return model

    # -- parts --------------------------------------------------------------------------

    def _diffusers_part(self, key: str, cls_name: str, subfolder: str | None, tag: str = "") -> Any:
        import diffusers

        def load() -> Any:
            cls = getattr(diffusers, cls_name)
            kwargs: dict[str, Any] = {"local_files_only": True, "torch_dtype": self.dtype}
            if subfolder:
                kwargs["subfolder"] = subfolder
            return self._ready(cls.from_pretrained(self.path(key), **kwargs))

        return self._once((key, cls_name, subfolder or "", tag), load)

    def _transformers_part(self, key: str, cls_name: str, subfolder: str | None) -> Any:
        import transformers

        def load() -> Any:
            cls = getattr(transformers, cls_name)
            path = self.path(key) / subfolder if subfolder else self.path(key)
            if cls_name.endswith(("Tokenizer", "Processor")):
                return cls.from_pretrained(path, local_files_only=True)
            return self._ready(cls.from_pretrained(path, local_files_only=True, dtype=self.dtype))

        return self._once((key, cls_name, subfolder or ""), load)

    def scheduler_config(self, key: str) -> dict[str, Any]:
        import diffusers

        def load() -> Any:
            return diffusers.DDIMScheduler.load_config(self.path(key), subfolder="scheduler",
                                                       local_files_only=True)

        return dict(self._once((key, "scheduler_config"), load))

    def new_scheduler(self, task_spec: TaskSpec, fast: bool = False) -> Any:
        """A fresh scheduler for one call: schedulers keep per-call state."""
        import diffusers

        assert task_spec.base is not None
        name = task_spec.scheduler or self.registry.scheduler
        if fast and task_spec.fast is not None:
            name = task_spec.fast.scheduler
        return getattr(diffusers, name).from_config(self.scheduler_config(task_spec.base))

    def fast_ready(self, task_spec: TaskSpec) -> bool:
        """Whether the few-step mode's LoRA is here (looked up once). Not with an IP-Adapter,
        whose UNet is of its own (speed=fast halves the steps there)."""
        if task_spec.fast is None or task_spec.ip_adapter:
            return False
        key = task_spec.fast.lora
        return bool(self._once((key, "present"), lambda: locate(self.registry.models[key], self.models_dir).present))

    def _fast_unet(self, base: str, lora: str) -> Any:
        """A copy of the base UNet with the few-step LoRA fused into its weights."""
        import diffusers

        def load() -> Any:
            spec = self.registry.models[lora]
            unet = diffusers.UNet2DConditionModel.from_pretrained(
                self.path(base), subfolder="unet", local_files_only=True, torch_dtype=self.dtype)
            unet = self._ready(unet)  # fused on the device: fast, and fp16 matmuls on a GPU
            state, alphas = diffusers.StableDiffusionPipeline.lora_state_dict(
                str(self.path(lora)), weight_name=spec.weight_name or LORA_WEIGHTS, local_files_only=True)
            unet.load_lora_adapter(state, network_alphas=alphas, prefix="unet", adapter_name="fast")
            unet.fuse_lora(lora_scale=1.0)
            unet.unload_lora()
            return self._ready(unet)

        return self._once((base, "UNet2DConditionModel", "unet", f"fast:{lora}"), load)

    def segmentation(self) -> tuple[Any, Any]:
        return (self._transformers_part("segmentation", "AutoImageProcessor", None),
                self._transformers_part("segmentation", "AutoModelForSemanticSegmentation", None))

    def depth(self) -> tuple[Any, Any]:
        return (self._transformers_part("depth", "AutoImageProcessor", None),
                self._transformers_part("depth", "AutoModelForDepthEstimation", None))

    def matting(self, key: str) -> tuple[Any, Any]:
        return (self._transformers_part(key, "AutoImageProcessor", None),
                self._transformers_part(key, "AutoModelForImageMatting", None))

    @torch.inference_mode()
    def reference_embeds(self, task_spec: TaskSpec, images: list[Any]) -> torch.Tensor:
        """CLIP image embeddings of reference images, shaped (batch, 1, dim) for the IP-Adapter."""
        assert task_spec.ip_adapter is not None
        folder = self.registry.models[task_spec.ip_adapter].image_encoder or "image_encoder"
        encoder = self._transformers_part(task_spec.ip_adapter, "CLIPVisionModelWithProjection", folder)
        processor = self._once((task_spec.ip_adapter, "image_processor"),
                               lambda: clip_processor(self.path(task_spec.ip_adapter) / folder, encoder))
        pixels = processor(images=[i.convert("RGB") for i in images], return_tensors="pt").pixel_values
        embeds: torch.Tensor = encoder(pixels.to(self.device, self.dtype)).image_embeds[:, None, :]
        return embeds

    # -- pipelines ----------------------------------------------------------------------

    def pipeline(self, task_spec: TaskSpec, fast: bool = False) -> Any:
        with self._lock:
            name = task_spec.task.value + (":fast" if fast else "")
            if name not in self._pipelines:
                self._pipelines[name] = self._assemble(task_spec, fast)
            return self._pipelines[name]

    def _assemble(self, spec: TaskSpec, fast: bool = False) -> Any:
        import diffusers
        from diffusers import MultiControlNetModel

        assert spec.base is not None
        base = spec.base
        unet_tag = f"ip:{spec.task.value}" if spec.ip_adapter else ""
        parts: dict[str, Any] = {
            "vae": self._diffusers_part(base, "AutoencoderKL", "vae"),
            "text_encoder": self._transformers_part(base, "CLIPTextModel", "text_encoder"),
            "tokenizer": self._transformers_part(base, "CLIPTokenizer", "tokenizer"),
            "unet": self._diffusers_part(base, "UNet2DConditionModel", "unet", unet_tag),
            "scheduler": self.new_scheduler(spec, fast),
        }
        if fast and spec.fast is not None and not spec.ip_adapter:
            parts["unet"] = self._fast_unet(base, spec.fast.lora)
        if spec.kind == "upscale":
            parts["low_res_scheduler"] = diffusers.DDPMScheduler.from_pretrained(
                self.path(base), subfolder="low_res_scheduler", local_files_only=True)
        else:
            parts.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        if spec.controlnets:
            nets = [self._diffusers_part(c.model, "ControlNetModel", None) for c in spec.controlnets]
            parts["controlnet"] = nets[0] if len(nets) == 1 else MultiControlNetModel(nets)
        if spec.ip_adapter:
            adapter = self.registry.models[spec.ip_adapter]
            parts["image_encoder"] = self._transformers_part(
                spec.ip_adapter, "CLIPVisionModelWithProjection", adapter.image_encoder or "image_encoder")
        pipeline = getattr(diffusers, spec.pipeline)(**parts)
        if spec.ip_adapter:
            adapter = self.registry.models[spec.ip_adapter]
            pipeline.load_ip_adapter(str(self.path(spec.ip_adapter)), subfolder=adapter.subfolder or "",
                                     weight_name=adapter.weight_name, image_encoder_folder=None,
                                     local_files_only=True)
            pipeline.set_ip_adapter_scale(float(spec.extra.get("ip_adapter_scale", 0.7)))
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def release(self) -> None:
        """Free cached GPU memory (after an error); the loaded models stay."""
        import gc

        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
