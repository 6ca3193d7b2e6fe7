"""Where weights are found: ROOMRENDER_MODELS_DIR first, then the local Hugging Face cache.

Nothing is ever downloaded (`local_files_only=True` everywhere): weights are fetched beforehand,
on a machine with internet (`roomrender models check` prints the ids). A model id `owner/name` is
looked up as `<models_dir>/owner/name`, then `<models_dir>/owner--name`, then in the Hugging
Face cache (HF_HOME / HF_HUB_CACHE, as huggingface_hub reads them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from roomrender.engines.diffusers.registry import ModelSpec

WEIGHT_SUFFIXES = (".safetensors", ".bin")
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"

# For each kind: (folder, needs weights) pairs that must be present. The first folder's config
# is the probe used to find the model in the Hugging Face cache.
_SD_PARTS = [("unet", True), ("vae", True), ("text_encoder", True), ("tokenizer", False),
             ("scheduler", False)]
LAYOUTS: dict[str, list[tuple[str, bool]]] = {
    "sd": _SD_PARTS,
    "sdxl": [*_SD_PARTS, ("text_encoder_2", True), ("tokenizer_2", False)],
    "sd_upscale": [*_SD_PARTS, ("low_res_scheduler", False)],
    "controlnet": [("", True)],
    "controlnet_union": [("", True)],
    "segmentation": [("", True)],
    "depth": [("", True)],
    "vae_tiny": [("", True)],
    "matting": [("", True)],
    # Wan 2.2 (video.py): one transformer, its VAE, UMT5 and T5's tokenizer.
    "wan": [("transformer", True), ("vae", True), ("text_encoder", True), ("tokenizer", False),
            ("scheduler", False)],
    "language": [("", True)],
    "flux": [("transformer", True), ("vae", True), ("text_encoder", True), ("text_encoder_2", True),
             ("tokenizer", False), ("tokenizer_2", False), ("scheduler", False)],
    "qwen_image": [("transformer", True), ("vae", True), ("text_encoder", True), ("tokenizer", False),
                   ("processor", False), ("scheduler", False)],
    # openai/shap-e-img2img (ShapEImg2ImgPipeline's components).
    "shap_e": [("prior", True), ("image_encoder", True), ("image_processor", False), ("scheduler", False),
               ("shap_e_renderer", True)],
}
# A model that `shares` another's VAE and text encoders has only its UNet and scheduler.
_SHARING_PARTS = [("unet", True), ("scheduler", False)]
CONFIG_NAMES = ("config.json", "scheduler_config.json", "tokenizer_config.json", "vocab.json",
                "tokenizer.json", "spiece.model", "preprocessor_config.json", "config.yaml")


@dataclass(frozen=True)
class Presence:
    spec: ModelSpec
    path: Path | None
    missing: tuple[str, ...]

    @property
    def present(self) -> bool:
        return self.path is not None and not self.missing


def required_folders(spec: ModelSpec) -> list[tuple[str, bool]]:
    """(folder, needs weights) pairs the model must have; "" is the model's own folder."""
    if spec.kind == "lora":
        return []
    if spec.kind == "ip_adapter":
        return [(spec.image_encoder or "image_encoder", True)]
    if spec.shares:
        return _SHARING_PARTS
    if spec.kind == "hunyuan3d":
        # tencent/Hunyuan3D-2: the shape model's folder (config.yaml and its weights).
        return [(spec.subfolder or "", True)]
    return LAYOUTS[spec.kind]


_required = required_folders


def variant_in(folder: Path, variant: str | None) -> str | None:
    """`variant` when the folder holds weights of that variant (`*.fp16.safetensors`), else None."""
    if variant and folder.is_dir() and any(p.name.endswith(f".{variant}.safetensors") for p in folder.iterdir()):
        return variant
    return None


def _has_config(folder: Path) -> bool:
    return any((folder / name).is_file() for name in CONFIG_NAMES)


def _has_weights(folder: Path) -> bool:
    return folder.is_dir() and any(p.name.endswith(WEIGHT_SUFFIXES) for p in folder.iterdir())


def missing_parts(spec: ModelSpec, root: Path) -> list[str]:
    """What of the model is absent under `root` (empty when complete)."""
    missing: list[str] = []
    for folder, weights in _required(spec):
        where = root / folder if folder else root
        if not _has_config(where):
            missing.append(f"{folder or '.'}/config")
        elif weights and not _has_weights(where):
            missing.append(f"{folder or '.'}/weights")
    if spec.kind in ("ip_adapter", "lora"):
        weight = root / (spec.subfolder or "") / (spec.weight_name or LORA_WEIGHTS)
        if not weight.is_file():
            missing.append(str(weight.relative_to(root)))
    return missing


def _probe(spec: ModelSpec) -> str:
    if spec.kind == "lora":
        return spec.weight_name or LORA_WEIGHTS
    if spec.kind == "ip_adapter":
        return f"{spec.subfolder}/{spec.weight_name}" if spec.subfolder else str(spec.weight_name)
    folder = _required(spec)[0][0]
    name = "scheduler_config.json" if folder.endswith("scheduler") else "config.json"
    if spec.kind == "hunyuan3d":
        name = "config.yaml"
    return f"{folder}/{name}" if folder else name


def hf_cache_dir() -> str | None:
    """The Hugging Face cache, read from the environment now (huggingface_hub reads it once)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def _from_hf_cache(spec: ModelSpec) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - comes with diffusers
        return None
    probe = _probe(spec)
    found = try_to_load_from_cache(spec.id, probe, cache_dir=hf_cache_dir())
    if not isinstance(found, str):
        return None
    root = Path(found)
    for _ in Path(probe).parts:
        root = root.parent
    return root


def candidates(spec: ModelSpec, models_dir: Path | None) -> list[Path]:
    paths: list[Path] = []
    if models_dir is not None:
        paths += [models_dir / spec.id, models_dir / spec.id.replace("/", "--")]
    cached = _from_hf_cache(spec)
    if cached is not None:
        paths.append(cached)
    return paths


def locate(spec: ModelSpec, models_dir: Path | None) -> Presence:
    """Where the model is, or what is missing from the best candidate."""
    best: Presence | None = None
    for path in candidates(spec, models_dir):
        if not path.is_dir():
            continue
        missing = tuple(missing_parts(spec, path))
        if not missing:
            return Presence(spec, path, ())
        best = best or Presence(spec, path, missing)
    return best or Presence(spec, None, ("not found",))


def fetch_hint(spec: ModelSpec, models_dir: Path | None) -> str:
    """The command that fetches this model on a machine with internet."""
    target = f"{models_dir}/{spec.id}" if models_dir else "<models_dir>/" + spec.id
    include = ""
    if spec.kind == "ip_adapter":
        include = f" --include '{spec.subfolder}/{spec.weight_name}' '{spec.image_encoder}/*'"
    elif spec.kind == "hunyuan3d":
        weights = f"model.{spec.variant or 'fp16'}.safetensors"
        include = f" --include '{spec.subfolder}/config.yaml' '{spec.subfolder}/{weights}'"
    return f"hf download {spec.id}{include} --local-dir {target}"
