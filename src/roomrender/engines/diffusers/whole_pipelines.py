"""Flow-matching transformer families (FLUX.1-schnell, Qwen-Image-Edit): one diffusers pipeline
folder loaded whole, its precision, quantization and offload chosen for the memory budget.

These models are large (FLUX.1-schnell 33.7 GB in bf16, Qwen-Image-Edit 57.7 GB: the registry's
`defaults.memory` of each family), so how they load depends on ROOMRENDER_DIFFUSERS_MEMORY_GB
(else the device's memory, less a margin):
- the bf16 need fits: loaded as it is (bf16 on a GPU, no offload: an 80 GB card);
- else, when the family names a quantization (`quantize`: its components, `quant_backend`) and
  that backend is installed: those components quantized on load through diffusers'
  PipelineQuantizationConfig (bitsandbytes NF4: a 24 GB card), and model CPU offload on top when
  even the quantized need does not fit;
- else model CPU offload on a GPU, or a clear error naming what to install.

The loaded pipeline is one entry of the PartCache (weighed by its components' parameters), so
the memory budget counts it with the other families' models.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from roomrender.canonical.errors import Unsupported
from roomrender.engines.diffusers.cache import GIB
from roomrender.engines.diffusers.registry import WHOLE_PIPELINE_KINDS, Family, Registry, TaskSpec

log = logging.getLogger("roomrender.engines.diffusers")

# The package each PipelineQuantizationConfig backend needs, and its keyword arguments.
BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "bitsandbytes_4bit": ("bitsandbytes", {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                           "bnb_4bit_compute_dtype": torch.bfloat16}),
    "bitsandbytes_8bit": ("bitsandbytes", {"load_in_8bit": True}),
    "torchao": ("torchao", {"quant_type": "int8wo"}),
}


def is_whole(registry: Registry, spec: TaskSpec) -> bool:
    """Whether the task's base is a flow-matching family loaded whole."""
    return spec.base is not None and registry.models[spec.base].kind in WHOLE_PIPELINE_KINDS


@dataclass(frozen=True)
class LoadPlan:
    """How a family loads: quantized (which components, which backend) and/or offloaded."""

    quantize: tuple[str, ...] = ()
    backend: str | None = None
    offload: bool = False

    def describe(self) -> str:
        parts = [f"{', '.join(self.quantize)} quantized ({self.backend})" if self.quantize else "full precision"]
        if self.offload:
            parts.append("model CPU offload")
        return ", ".join(parts)


def backend_installed(backend: str) -> bool:
    package = BACKENDS.get(backend, ("", {}))[0]
    return bool(package) and importlib.util.find_spec(package) is not None


def weights_bytes(folder: Path) -> int:
    """Bytes of the weights under a pipeline folder (one set per component, as `models pull`
    fetches them): what loading them in their stored precision takes."""
    return sum(path.stat().st_size for path in folder.rglob("*.safetensors") if ".cache" not in path.parts)


def plan_load(family: Family, budget_bytes: int | None, device: torch.device,
              backend_available: Any = backend_installed, need_bytes: int | None = None) -> LoadPlan:
    """How to load `family` within `budget_bytes` (None: no limit). `need_bytes`: what its
    weights here take (else the registry's bf16 figure); quantized, they shrink in the registry's
    ratio (`quantized_gb` / `bf16_gb`)."""
    memory = family.memory
    stated = float(memory.get("bf16_gb", 0)) * GIB
    need = float(need_bytes) if need_bytes is not None else stated
    if budget_bytes is None or need <= budget_bytes:
        return LoadPlan()
    quantize = tuple(memory.get("quantize", ()))
    backend = memory.get("quant_backend")
    ratio = float(memory.get("quantized_gb", 0)) * GIB / stated if stated and memory.get("quantized_gb") else 1.0
    quantized = need * ratio
    if quantize and backend and backend_available(backend):
        return LoadPlan(quantize, backend, offload=quantized > budget_bytes and device.type == "cuda")
    if device.type == "cuda":
        return LoadPlan(offload=True)
    raise Unsupported(
        f"the {family.name} family needs {need / GIB:.1f} GB and this server's memory budget "
        f"is {budget_bytes / GIB:.1f} GB; install {BACKENDS.get(backend or '', ('bitsandbytes', {}))[0]} "
        "to quantize it on load, or raise ROOMRENDER_DIFFUSERS_MEMORY_GB", code="not_enough_memory")


def quantization_config(plan: LoadPlan) -> Any:
    """diffusers' PipelineQuantizationConfig for the plan (None: no quantization)."""
    if not plan.quantize or plan.backend is None:
        return None
    from diffusers.quantizers.pipe_quant_config import PipelineQuantizationConfig

    return PipelineQuantizationConfig(quant_backend=plan.backend, quant_kwargs=dict(BACKENDS[plan.backend][1]),
                                      components_to_quantize=list(plan.quantize))


class Loaded:
    """A whole pipeline as one PartCache entry: weighed by its components' parameters."""

    def __init__(self, pipeline: Any, plan: LoadPlan) -> None:
        self.pipeline = pipeline
        self.plan = plan

    def _modules(self) -> list[torch.nn.Module]:
        return [part for part in self.pipeline.components.values() if isinstance(part, torch.nn.Module)]

    def parameters(self) -> Iterator[torch.Tensor]:
        for module in self._modules():
            yield from module.parameters()

    def buffers(self) -> Iterator[torch.Tensor]:
        for module in self._modules():
            yield from module.buffers()


def own_components(kind: str, path: Path) -> dict[str, Any]:
    """Components loaded here rather than by the pipeline: Qwen's processor (qwen_edit.py)."""
    if kind == "qwen_image":
        from roomrender.engines.diffusers.qwen_edit import ImageTextProcessor

        return {"processor": ImageTextProcessor.from_folder(path / "processor")}
    return {}


def load_pipeline(cls_name: str, path: Path, *, device: torch.device, dtype: torch.dtype, plan: LoadPlan,
                  kind: str = "") -> Loaded:
    """The pipeline of the folder at `path`, loaded as `plan` says."""
    import diffusers

    own = own_components(kind, path)
    # Loaded as None by the pipeline (diffusers checks a passed component's class), set after.
    kwargs: dict[str, Any] = {"local_files_only": True, "dtype": dtype, **dict.fromkeys(own)}
    config = quantization_config(plan)
    if config is not None:
        kwargs["quantization_config"] = config
    pipeline = getattr(diffusers, cls_name).from_pretrained(path, **kwargs)
    for name, part in own.items():
        setattr(pipeline, name, part)
    if plan.offload:
        pipeline.enable_model_cpu_offload(device=device)
    elif config is None:
        pipeline.to(device)
    else:
        # Quantized modules are placed on load; the others follow.
        for part in pipeline.components.values():
            if isinstance(part, torch.nn.Module) and not getattr(part, "is_quantized", False):
                part.to(device)
    for part in pipeline.components.values():
        if isinstance(part, torch.nn.Module):
            part.eval()
            part.requires_grad_(False)
    pipeline.set_progress_bar_config(disable=True)
    log.info("%s loaded from %s: %s", cls_name, path, plan.describe())
    return Loaded(pipeline, plan)


def memory_line(family: Family) -> str | None:
    """What `models check` says of a family's memory need (None: the registry states none)."""
    memory = family.memory
    if not memory:
        return None
    line = f"{memory.get('bf16_gb')} GB in bf16"
    if memory.get("quantize"):
        line += (f", {memory.get('quantized_gb')} GB with {', '.join(memory['quantize'])} quantized "
                 f"({memory.get('quant_backend')}; offloaded further where even that does not fit)")
    if memory.get("note"):
        line += f": {memory['note']}"
    return line
