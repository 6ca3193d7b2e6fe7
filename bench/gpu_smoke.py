"""GPU smoke run of the diffusers engine: every task of a model family once through the real
worker, timed.

`--family sd15` (the default): full-size SD 1.5 architectures (UNet, VAE, text encoder, the
inpainting and InstructPix2Pix UNets, four ControlNets, the x4 upscaler, UperNet, DPT, ViTMatte,
an IP-Adapter with its CLIP vision encoder, TAESD). `--family sdxl`: full-size SDXL ones (the
base UNet, 2.6 B parameters, and the inpainting one, both text encoders, the VAE, ControlNet
Union, the SDXL IP-Adapter, TAESDXL, UperNet, DPT, ViTMatte). They are built with random weights
into a temporary models folder (nothing is downloaded), then each task of the family runs at
--size through `build_services` + the worker, cold (loading included) and warm, live previews
on. `--family wan`: Wan 2.2 TI2V-5B's full-size architecture (the 5 B transformer, UMT5-XXL, the
48-channel VAE) films a `--duration` s room tour (the video task, an MP4 through the worker) at
--size lines; with `--memory-gb 20` (a 24 GB card) it runs offloaded. `--family object_3d`: the
object_3d task alone, Shap-E image-to-3D at its real architecture (a 24-layer prior, CLIP
ViT-L/14, the 256-wide renderer; marching cubes over --grid³) with the cutout models, a GLB per
job. The images are noise; the timings and the memory are what a real checkpoint of the same
architecture costs. `resident GiB` is what the engine holds loaded after the task, within
--memory-gb. `--family flux_schnell`: the FLUX.1-schnell architecture (12 B transformer, T5-XXL,
CLIP-L, its VAE; text_to_image and the tileable pattern); `--family qwen_edit`: Qwen-Image-Edit's
(20 B transformer, Qwen2.5-VL-7B, its VAE; instruct with and without a reference, restyle,
empty_room, stage, recolor, edit). Both load in bf16 on a GPU; within a smaller --memory-gb they
load quantized (bitsandbytes NF4, when installed) or offloaded (whole_pipelines.py).

    .venv/bin/python bench/gpu_smoke.py                               # GPU host, SD 1.5 at 512
    .venv/bin/python bench/gpu_smoke.py --family sdxl --size 1024     # GPU host, SDXL
    .venv/bin/python bench/gpu_smoke.py --profile tiny --size 64 --steps 2   # CPU dry run
    .venv/bin/python bench/gpu_smoke.py --family wan --size 704 --resolution 720p --duration 5 \
        --steps 50 --dtype bfloat16 --tasks video        # GPU: a 5 s 720p tour, Wan's own settings
    .venv/bin/python bench/gpu_smoke.py --family wan --profile tiny --size 64 --steps 2    # CPU dry run
    .venv/bin/python bench/gpu_smoke.py --family sdxl --size 128 --steps 2 --dtype bfloat16 \
        --memory-gb 9                                  # CPU dry run of full-size SDXL, bounded
    .venv/bin/python bench/gpu_smoke.py --family flux_schnell --size 1024   # GPU host, FLUX.1-schnell
    .venv/bin/python bench/gpu_smoke.py --family flux_schnell --profile tiny --size 64 --steps 2  # CPU
    .venv/bin/python bench/gpu_smoke.py --family object_3d            # GPU host, Shap-E, 64 steps, 128³
    .venv/bin/python bench/gpu_smoke.py --family object_3d --profile tiny --size 64 --steps 2 --grid 32  # CPU
    .venv/bin/python bench/gpu_smoke.py --list-families   # the families it can run (bench/gpu_check.sh)

With --tasks, only those tasks' models are built.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from roomrender import samples
from roomrender.canonical.camera import frame_size
from roomrender.canonical.models import GenerationRequest, JobStatus
from roomrender.catalog import load_data_file
from roomrender.config import Settings
from roomrender.engines.diffusers.guides import IMAGE_TO_IMAGE
from roomrender.engines.diffusers.random_models import build_models_dir
from roomrender.engines.diffusers.registry import parse_registry
from roomrender.services import Services, build_services


def room_photo(size: int) -> str:
    """A synthetic room (ceiling, walls, window, floor, sofa) as a PNG data URI."""
    return "data:image/png;base64," + base64.b64encode(samples.room_photo(size, size, "PNG")).decode()


def product_photo(size: int) -> str:
    """A product on a white studio background, as a PNG data URI."""
    product = Image.new("RGB", (size, size), (250, 250, 250))
    product.paste((150, 90, 50), (size // 5, size // 4, size * 4 // 5, size * 3 // 4))
    buffer = io.BytesIO()
    product.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def requests_for(size: int, duration: float = 2.0,
                 resolution: str = "480p") -> dict[str, tuple[dict[str, Any], tuple[int, int] | None]]:
    """Every task's request and the output size it must give (None: segment's masks)."""
    room = room_photo(size)
    product = product_photo(size)
    q = size // 4
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (size // 4, size // 4, size // 2, size // 2))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    mask_uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return {
        "restyle": ({"image": room, "style": "scandinavian", "room_type": "living_room"}, (size, size)),
        "empty_room": ({"image": room}, (size, size)),
        "stage": ({"image": room, "style": "modern", "room_type": "bedroom"}, (size, size)),
        "sketch_render": ({"image": room, "style": "industrial_loft"}, (size, size)),
        "style_transfer": ({"image": room, "reference_image": room}, (size, size)),
        "edit": ({"image": room, "mask": mask_uri, "prompt": "a green velvet armchair"}, (size, size)),
        "recolor": ({"image": room, "color": "#A3B18A", "area": "wall"}, (size, size)),
        "upscale": ({"image": room, "scale": 2}, (size * 2, size * 2)),
        "expand": ({"image": room, "expand": {"left": 0.25, "right": 0.25}}, (size * 3 // 2, size)),
        "segment": ({"image": room}, None),
        "text_to_image": ({"prompt": "a bright kitchen", "width": size, "height": size}, (size, size)),
        "instruct": ({"image": room, "prompt": "make the walls sage green"}, (size, size)),
        # Qwen-Image-Edit takes references after the room (the other families ignore them).
        "instruct_references": ({"image": room, "extra_images": [product], "prompt": "put this chair by the window"},
                                (size, size)),
        "pattern": ({"prompt": "terracotta tiles with a blue border", "width": size, "height": size}, (size, size)),
        "cutout": ({"image": product}, (size, size)),
        "place": ({"image": room, "product_image": product, "placement": {"x": q, "y": q, "w": 2 * q, "h": 2 * q},
                   "area": {"x": q // 2, "y": q // 2, "w": 3 * q, "h": 3 * q}}, (size, size)),
        # A 16:9 photo: the model films at most --size lines, resized to the asked resolution.
        "video": ({"image": "data:image/png;base64," + base64.b64encode(samples.room_photo(1280, 720, "PNG")).decode(),
                   "camera": "dolly_in", "duration": duration, "fps": 24, "resolution": resolution},
                  frame_size(resolution, 1280, 720)),
        # Issue 27 (a key that is not a task names its task): a tile with circular padding, from
        # words and from a picture; a picture after a guide image (fluw); painted then traced.
        "pattern_image": ({"task": "pattern", "image": room, "prompt": "linen", "width": size,
                           "height": size}, (size, size)),
        "fluw_guide": ({"task": "text_to_image", "image": room, "prompt": "a sunlit loft",
                        "width": size, "height": size}, (size, size)),
        "fluwvector": ({"task": "vectorize", "prompt": "a sunlit loft", "width": size, "height": size}, None),
        "object_3d": ({"image": product, "simplify": 5000}, None),
    }


def run_task(services: Services, owner: Any, fields: dict[str, Any], size: tuple[int, int] | None,
             n: int) -> tuple[float, str]:
    if services.engine.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    job = services.jobs.submit(owner, GenerationRequest(n=n, seed=1, **fields))
    worker = services.new_worker()
    while worker.run_once():
        pass
    seconds = time.perf_counter() - started
    job = services.jobs.get(owner, job.id)
    if job.status != JobStatus.succeeded:
        return seconds, f"FAILED {job.error_code}: {job.error_message}"
    sizes = {(o.width, o.height) for o in job.outputs}
    if size is not None and sizes != {size}:
        return seconds, f"WRONG SIZE {sizes}"
    if fields.get("task") == "object_3d":
        return seconds, f"ok, {len(job.outputs)} GLB(s), {sum(o.size_bytes or 0 for o in job.outputs)} bytes"
    return seconds, f"ok, {len(job.outputs)} output(s)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["full", "tiny"], default="full")
    parser.add_argument("--size", type=int, default=512, help="input and working resolution")
    parser.add_argument("--steps", type=int, default=None, help="override every task's steps")
    parser.add_argument("--n", type=int, default=1, help="images per job")
    parser.add_argument("--tasks", default="", help="comma-separated subset")
    parser.add_argument("--models-dir", type=Path, default=None, help="reuse a folder built before")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--family", default="sd15",
                        help="the registry's model family to run, or object_3d (Shap-E image-to-3D alone)")
    parser.add_argument("--grid", type=int, default=128, help="object_3d: the marching-cubes grid's side")
    parser.add_argument("--dtype", default=None, help="float16 (CUDA default), bfloat16, float32 (CPU default)")
    parser.add_argument("--memory-gb", type=float, default=0.0, help="the engine's memory budget (0: its default)")
    parser.add_argument("--list-families", action="store_true", help="print the families it can run, one a line")
    parser.add_argument("--duration", type=float, default=2.0, help="the video task's clip length, seconds")
    parser.add_argument("--resolution", default="480p", help="the video task's resolution (480p, 720p, 1080p)")
    args = parser.parse_args()
    if args.list_families:
        print("\n".join(["sd15", *load_data_file("diffusers_registry.json")["families"], "object_3d"]))
        return 0

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    print(f"device: {device}, torch {torch.__version__}, profile {args.profile}, size {args.size}")
    work = Path(tempfile.mkdtemp(prefix="roomrender-smoke-"))
    models_dir = args.models_dir or work / "models"
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if cuda else torch.float32)
    data = load_data_file("diffusers_registry.json")
    for family in [data, *data["families"].values()]:
        family.setdefault("defaults", {})["resolution"] = args.size
        for entry in family["tasks"].values():
            if args.steps:
                entry["steps"] = args.steps
            if "max_output_side" in entry:
                entry["max_output_side"] = args.size * 2
            if "grid_size" in entry:
                entry["grid_size"] = args.grid
    registry = parse_registry(data)
    objects = args.family == "object_3d"
    family = registry.default_family if objects else args.family
    family_specs = [spec for spec in registry.family(family).tasks.values()
                    if not objects or spec.task.value == "object_3d"]
    asked = {t.strip() for t in args.tasks.split(",") if t.strip()}
    # Only the models of the tasks asked for are built (a full-size family is minutes of random init).
    needed = {key for spec in family_specs if not asked or spec.task.value in asked
              for key in [*spec.model_keys(), *spec.optional_keys()]}
    if not (models_dir / ".built").exists():
        started = time.perf_counter()
        build_models_dir(models_dir, registry, profile=args.profile, dtype=dtype, only=needed)
        (models_dir / ".built").write_text(args.family)
        print(f"built random {args.profile} {args.family} models in {models_dir} "
              f"({time.perf_counter() - started:.0f}s)")
    registry_file = work / "registry.json"
    registry_file.write_text(json.dumps(data))

    settings = Settings(data_dir=work / "data", engine="diffusers", models_dir=models_dir,
                        diffusers_registry=registry_file, max_output_pixels=10**9,
                        diffusers_dtype=str(dtype).removeprefix("torch."))
    # The engine's own settings (ROOMRENDER_DIFFUSERS_*) are read from the environment.
    os.environ["ROOMRENDER_DIFFUSERS_FAMILY"] = family
    if args.memory_gb:
        os.environ["ROOMRENDER_DIFFUSERS_MEMORY_GB"] = str(args.memory_gb)
    services = build_services(settings)
    owner, _ = services.keys.create("smoke")
    cases = requests_for(args.size, args.duration, args.resolution)
    served = {spec.task.value for spec in family_specs}

    def runs_here(case: str, fields: dict[str, Any]) -> bool:
        task = fields.get("task", case.removesuffix("_references"))
        if task == "vectorize":
            # fluwvector: painted by the family's text_to_image, then traced.
            return "text_to_image" in served
        if case.endswith("_references"):
            return args.family == "qwen_edit"
        if task == "text_to_image" and "image" in fields:
            # fluw's guide: only a family whose text pipeline has an image-to-image sibling.
            return any(spec.task.value == "text_to_image"
                       and bool(spec.extra.get("guide_pipeline") or spec.pipeline in IMAGE_TO_IMAGE)
                       for spec in family_specs)
        return task in served

    chosen = [t.strip() for t in args.tasks.split(",") if t.strip()] or [
        t for t, (fields, _) in cases.items() if runs_here(t, fields)]
    results: list[dict[str, Any]] = []
    failures = 0
    print(f"{'task':<16}{'cold s':>9}{'warm s':>9}{'peak GiB':>10}{'resident GiB':>14}  result")
    for task in chosen:
        fields, size = cases[task]
        fields = {"task": task.removesuffix("_references"), "model": family, **fields}
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        cold, _ = run_task(services, owner, fields, size, args.n)
        warm, outcome = run_task(services, owner, fields, size, args.n)
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
        resident = services.engine.store.parts.resident_bytes / 2**30  # type: ignore[attr-defined]
        failures += not outcome.startswith("ok")
        print(f"{task:<16}{cold:>9.2f}{warm:>9.2f}{peak:>10.2f}{resident:>14.2f}  {outcome}", flush=True)
        results.append({"task": task, "cold_s": round(cold, 3), "warm_s": round(warm, 3),
                        "peak_gib": round(peak, 2), "resident_gib": round(resident, 2), "result": outcome})
    if args.json:
        args.json.write_text(json.dumps({"device": device, "profile": args.profile, "size": args.size,
                                         "family": args.family, "dtype": str(dtype),
                                         "steps": args.steps, "n": args.n, "results": results}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
