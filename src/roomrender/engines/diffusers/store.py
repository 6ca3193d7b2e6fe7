"""Loads checkpoints once and assembles the pipelines the registry names, sharing components.

A base checkpoint's VAE, text encoder and UNet are loaded once and shared by every pipeline built
on it (text_to_image and sketch_render share one SD 1.5; restyle, stage, edit... share the
inpainting one; an SDXL inpainting UNet uses the SDXL base's VAE and text encoders, `shares` in
the registry). A pipeline with an IP-Adapter gets a UNet of its own, since attaching the adapter
changes the UNet's attention layers for everybody holding it. Which components a pipeline takes
(one text encoder or two, a ControlNet Union, an image encoder) follows its class's constructor.

Loaded components live in a PartCache (cache.py) that keeps them within the memory budget: a
pipeline whose component was unloaded is forgotten and assembled again when next needed.

The few-step mode (speed="fast") runs a second copy of the base UNet with the LCM-LoRA fused into
its weights: toggling a LoRA on the shared UNet per batch would cost a peft indirection on every
layer of every quality batch, break fused QKV projections and recompile a compiled UNet at each
switch; a fused copy costs 1.7 GB of GPU memory (fp16) per base and nothing per step.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import torch

from roomrender.canonical.errors import Unsupported
from roomrender.engines.diffusers.cache import PartCache
from roomrender.engines.diffusers.loading import LORA_WEIGHTS, fetch_hint, locate, variant_in
from roomrender.engines.diffusers.registry import ModelSpec, Registry, TaskSpec
from roomrender.engines.diffusers.video_memory import needs_offload
from roomrender.engines.diffusers.whole_pipelines import is_whole, load_pipeline, plan_load, weights_bytes


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
                 dtype: torch.dtype, budget_bytes: int | None = None) -> None:
        self.registry = registry
        self.models_dir = models_dir
        self.device = device
        self.dtype = dtype
        self.parts = PartCache(budget_bytes)
        self.parts.on_evict(self._forget_pipelines_of)
        # name → (pipeline, the part keys it holds)
        self._pipelines: dict[str, tuple[Any, frozenset[Hashable]]] = {}
        self._present: dict[str, bool] = {}
        self._assembling: set[Hashable] | None = None
        self._lock = threading.RLock()

    # -- where --------------------------------------------------------------------------

    def missing(self, task_spec: TaskSpec) -> list[ModelSpec]:
        return [spec for spec in self.registry.models_of(task_spec)
                if not locate(spec, self.models_dir).present]

    def path(self, key: str) -> Path:
        spec = self.registry.models[key]
        found = locate(spec, self.models_dir)
        if not found.present or found.path is None:
            raise missing_models_error(key, [spec], self.models_dir)
        return found.path

    def present(self, key: str) -> bool:
        """Whether an optional model is here (looked up once)."""
        if key not in self._present:
            self._present[key] = locate(self.registry.models[key], self.models_dir).present
        return self._present[key]

    def _shared(self, key: str) -> str:
        """The model whose VAE, text encoders and tokenizers `key` uses."""
        return self.registry.models[key].shares or key

    def _once(self, key: tuple[str, ...], load: Any) -> Any:
        with self._lock:
            if self._assembling is not None:
                self._assembling.add(key)
            return self.parts.get(key, load)

    def _ready(self, model: Any, device: torch.device | None = None) -> Any:
        model = model.to(device or self.device)
        model.eval()
        model.requires_grad_(False)
        return model

    # -- parts --------------------------------------------------------------------------

    def _load_diffusers(self, key: str, cls_name: str, subfolder: str | None,
                        dtype: torch.dtype | None = None) -> Any:
        import diffusers

        root = self.path(key)
        kwargs: dict[str, Any] = {"local_files_only": True, "torch_dtype": dtype or self.dtype}
        if subfolder:
            kwargs["subfolder"] = subfolder
        variant = variant_in(root / (subfolder or ""), self.registry.models[key].variant)
        if variant:
            kwargs["variant"] = variant
        return getattr(diffusers, cls_name).from_pretrained(root, **kwargs)

    def _diffusers_part(self, key: str, cls_name: str, subfolder: str | None, tag: str = "") -> Any:
        return self._once((key, cls_name, subfolder or "", tag),
                          lambda: self._ready(self._load_diffusers(key, cls_name, subfolder)))

    def _transformers_part(self, key: str, cls_name: str, subfolder: str | None) -> Any:
        import transformers

        def load() -> Any:
            cls = getattr(transformers, cls_name)
            path = self.path(key) / subfolder if subfolder else self.path(key)
            if cls_name.endswith(("Tokenizer", "Processor")):
                return cls.from_pretrained(path, local_files_only=True)
            kwargs: dict[str, Any] = {"local_files_only": True, "dtype": self.dtype}
            variant = variant_in(path, self.registry.models[key].variant)
            if variant:
                kwargs["variant"] = variant
            return self._ready(cls.from_pretrained(path, **kwargs))

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
        name = task_spec.scheduler
        if fast and task_spec.fast is not None:
            name = task_spec.fast.scheduler
        return getattr(diffusers, name).from_config(self.scheduler_config(task_spec.base))

    def fast_ready(self, task_spec: TaskSpec) -> bool:
        """Whether the few-step mode's LoRA is here (looked up once). Not with an IP-Adapter,
        whose UNet is of its own (speed=fast halves the steps there)."""
        if task_spec.fast is None or task_spec.ip_adapter:
            return False
        return self.present(task_spec.fast.lora)

    def preview_ready(self, task_spec: TaskSpec) -> bool:
        return task_spec.preview is not None and self.present(task_spec.preview.model)

    def preview_decoder(self, task_spec: TaskSpec) -> Any:
        """The tiny autoencoder (TAESD) that turns the latents into a preview."""
        assert task_spec.preview is not None
        return self._diffusers_part(task_spec.preview.model, "AutoencoderTiny", None)

    def tokenizer(self, task_spec: TaskSpec) -> Any:
        assert task_spec.base is not None
        return self._transformers_part(self._shared(task_spec.base), "CLIPTokenizer", "tokenizer")

    def _fast_unet(self, base: str, lora: str) -> Any:
        """A copy of the base UNet with the few-step LoRA fused into its weights."""
        import diffusers

        def load() -> Any:
            spec = self.registry.models[lora]
            unet = self._ready(self._load_diffusers(base, "UNet2DConditionModel", "unet"))
            # Fused on the device: fast, and fp16 matmuls on a GPU.
            state, alphas = diffusers.StableDiffusionPipeline.lora_state_dict(
                str(self.path(lora)), weight_name=spec.weight_name or LORA_WEIGHTS, local_files_only=True)
            unet.load_lora_adapter(state, network_alphas=alphas, prefix="unet", adapter_name="fast")
            unet.fuse_lora(lora_scale=1.0)
            unet.unload_lora()
            return self._ready(unet)

        return self._once((base, "UNet2DConditionModel", "unet", f"fast:{lora}"), load)

    def language_model(self, key: str) -> tuple[Any, Any]:
        """A chat model's tokenizer and causal LM (kept within the memory budget like the rest)."""
        return (self._transformers_part(key, "AutoTokenizer", None),
                self._transformers_part(key, "AutoModelForCausalLM", None))

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
            name = task_spec.name + (":fast" if fast else "")
            if name not in self._pipelines:
                self._assembling = set()
                try:
                    pipeline = self._assemble(task_spec, fast)
                    keys = frozenset(self._assembling)
                finally:
                    self._assembling = None
                self._pipelines[name] = (pipeline, keys)
                self.parts.reweigh(keys)
            pipeline, keys = self._pipelines[name]
            self.parts.touch(keys)
            return pipeline

    def pipeline_names(self) -> list[str]:
        return list(self._pipelines)

    def _forget_pipelines_of(self, key: Hashable, _value: Any) -> None:
        with self._lock:
            for name in [name for name, (_p, keys) in self._pipelines.items() if key in keys]:
                del self._pipelines[name]

    def _assemble(self, spec: TaskSpec, fast: bool = False) -> Any:
        import diffusers

        assert spec.base is not None
        if spec.kind == "video":
            return self._assemble_wan(spec)
        if is_whole(self.registry, spec):
            return self._whole(spec)
        if spec.pipeline == "ShapEImg2ImgPipeline":
            return self._assemble_shap_e(spec)
        base, shared = spec.base, self._shared(spec.base)
        cls = getattr(diffusers, spec.pipeline)
        accepted = inspect.signature(cls.__init__).parameters
        unet_tag = f"ip:{spec.name}" if spec.ip_adapter else ""
        parts: dict[str, Any] = {
            "vae": self._diffusers_part(shared, "AutoencoderKL", "vae"),
            "text_encoder": self._transformers_part(shared, "CLIPTextModel", "text_encoder"),
            "tokenizer": self._transformers_part(shared, "CLIPTokenizer", "tokenizer"),
            "unet": self._diffusers_part(base, "UNet2DConditionModel", "unet", unet_tag),
            "scheduler": self.new_scheduler(spec, fast),
            "safety_checker": None, "feature_extractor": None, "requires_safety_checker": False,
            "add_watermarker": False, "requires_aesthetics_score": self._model_index(base).get(
                "requires_aesthetics_score", False),
        }
        if "text_encoder_2" in accepted:
            parts["text_encoder_2"] = self._transformers_part(shared, "CLIPTextModelWithProjection", "text_encoder_2")
            parts["tokenizer_2"] = self._transformers_part(shared, "CLIPTokenizer", "tokenizer_2")
        if fast and spec.fast is not None and not spec.ip_adapter:
            parts["unet"] = self._fast_unet(base, spec.fast.lora)
        if spec.kind == "upscale":
            parts["low_res_scheduler"] = diffusers.DDPMScheduler.from_pretrained(
                self.path(base), subfolder="low_res_scheduler", local_files_only=True)
        if spec.controlnets:
            parts["controlnet"] = self._controlnet(spec)
        if spec.ip_adapter:
            adapter = self.registry.models[spec.ip_adapter]
            parts["image_encoder"] = self._transformers_part(
                spec.ip_adapter, "CLIPVisionModelWithProjection", adapter.image_encoder or "image_encoder")
        pipeline = cls(**{name: part for name, part in parts.items() if name in accepted})
        if spec.ip_adapter:
            adapter = self.registry.models[spec.ip_adapter]
            pipeline.load_ip_adapter(str(self.path(spec.ip_adapter)), subfolder=adapter.subfolder or "",
                                     weight_name=adapter.weight_name, image_encoder_folder=None,
                                     local_files_only=True)
            pipeline.set_ip_adapter_scale(float(spec.extra.get("ip_adapter_scale", 0.7)))
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def _assemble_wan(self, spec: TaskSpec) -> Any:
        """Wan 2.2 TI2V-5B (video.py runs it): transformer, VAE (float32, as Wan's authors
        advise), UMT5 and its tokenizer. When its weights and working memory exceed the budget
        (a 24 GB card) they wait in CPU memory and go to the GPU one model at a time
        (`enable_model_cpu_offload`)."""
        import diffusers
        import transformers

        assert spec.base is not None
        key = spec.base
        offload = needs_offload(spec, self.device, self.parts.budget_bytes)
        where = torch.device("cpu") if offload else self.device
        tag = "offload" if offload else ""
        wanted = str(spec.extra.get("dtype", ""))
        dtype = getattr(torch, wanted) if wanted and self.device.type == "cuda" else self.dtype

        def text_encoder() -> Any:
            return self._ready(transformers.UMT5EncoderModel.from_pretrained(
                self.path(key) / "text_encoder", local_files_only=True, dtype=dtype), where)

        parts = {
            "transformer": self._once((key, "WanTransformer3DModel", "transformer", tag), lambda: self._ready(
                self._load_diffusers(key, "WanTransformer3DModel", "transformer", dtype), where)),
            "vae": self._once((key, "AutoencoderKLWan", "vae", tag), lambda: self._ready(
                self._load_diffusers(key, "AutoencoderKLWan", "vae", torch.float32), where)),
            "text_encoder": self._once((key, "UMT5EncoderModel", "text_encoder", tag), text_encoder),
            "tokenizer": self._transformers_part(key, "AutoTokenizer", "tokenizer"),
            "scheduler": self.new_scheduler(spec),
        }
        pipeline = getattr(diffusers, spec.pipeline)(
            **parts, expand_timesteps=bool(self._model_index(key).get("expand_timesteps", True)))
        if offload:
            pipeline.enable_model_cpu_offload(device=self.device)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def _whole(self, spec: TaskSpec) -> Any:
        """A flow-matching family's pipeline, loaded whole (whole_pipelines.py); in bf16 on a GPU,
        where fp16 overflows these transformers."""
        assert spec.base is not None
        base = spec.base
        dtype = torch.bfloat16 if self.device.type == "cuda" and self.dtype == torch.float16 else self.dtype

        def load() -> Any:
            folder = self.path(base)
            plan = plan_load(self.registry.family(spec.family), self.parts.budget_bytes, self.device,
                             need_bytes=weights_bytes(folder))
            return load_pipeline(spec.pipeline, folder, device=self.device, dtype=dtype, plan=plan,
                                 kind=self.registry.models[base].kind)

        return self._once((base, "pipeline", spec.pipeline), load).pipeline

    def _assemble_shap_e(self, spec: TaskSpec) -> Any:
        """Shap-E image-to-3D (objects.py), its parts in the PartCache like every other's."""
        from diffusers import ShapEImg2ImgPipeline
        from diffusers.pipelines.shap_e.renderer import ShapERenderer

        assert spec.base is not None
        base = spec.base

        def renderer() -> Any:
            return self._ready(ShapERenderer.from_pretrained(self.path(base), subfolder="shap_e_renderer",
                                                             local_files_only=True, torch_dtype=self.dtype))

        pipeline: Any = ShapEImg2ImgPipeline(
            prior=self._diffusers_part(base, "PriorTransformer", "prior"),
            image_encoder=self._transformers_part(base, "CLIPVisionModel", "image_encoder"),
            image_processor=self._transformers_part(base, "CLIPImageProcessor", "image_processor"),
            scheduler=self.new_scheduler(spec),
            shap_e_renderer=self._once((base, "ShapERenderer", "shap_e_renderer"), renderer))
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def _controlnet(self, spec: TaskSpec) -> Any:
        from diffusers import MultiControlNetModel

        if spec.controlnets[0].mode is not None:
            # One ControlNet Union takes every control type of the task.
            return self._diffusers_part(spec.controlnets[0].model, "ControlNetUnionModel", None)
        nets = [self._diffusers_part(c.model, "ControlNetModel", None) for c in spec.controlnets]
        return nets[0] if len(nets) == 1 else MultiControlNetModel(nets)

    def _model_index(self, key: str) -> dict[str, Any]:
        def load() -> Any:
            index = self.path(key) / "model_index.json"
            return json.loads(index.read_text("utf-8")) if index.is_file() else {}

        return dict(self._once((key, "model_index"), load))

    def release(self) -> None:
        """Free cached GPU memory (after an error); the loaded models stay."""
        import gc

        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
