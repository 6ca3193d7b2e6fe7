"""GPU smoke run of the diffusers engine: every task once through the real worker, timed.

Full-size SD 1.5 architectures (UNet, VAE, text encoder, the inpainting UNet, four ControlNets,
the x4 upscaler, UperNet, DPT, an IP-Adapter with its CLIP vision encoder, ViTMatte) are built with random
weights into a temporary models folder (nothing is downloaded), then each task runs at 512x512
through `build_services` + the worker, cold (loading included) and warm. The images are noise;
the timings and the memory are what a real checkpoint of the same architecture costs.

    .venv/bin/python bench/gpu_smoke.py                 # on a GPU host; about 10 GB of disk (fp16)
    .venv/bin/python bench/gpu_smoke.py --profile tiny --size 64 --steps 2   # CPU dry run
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from roomrender import samples
from roomrender.canonical.models import GenerationRequest, JobStatus
from roomrender.catalog import load_data_file
from roomrender.config import Settings
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


def requests_for(size: int) -> dict[str, tuple[dict[str, Any], tuple[int, int] | None]]:
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
        "cutout": ({"image": product}, (size, size)),
        "place": ({"image": room, "product_image": product, "placement": {"x": q, "y": q, "w": 2 * q, "h": 2 * q},
                   "area": {"x": q // 2, "y": q // 2, "w": 3 * q, "h": 3 * q}}, (size, size)),
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
    return seconds, f"ok, {len(job.outputs)} image(s)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["full", "tiny"], default="full")
    parser.add_argument("--size", type=int, default=512, help="input and working resolution")
    parser.add_argument("--steps", type=int, default=None, help="override every task's steps")
    parser.add_argument("--n", type=int, default=1, help="images per job")
    parser.add_argument("--tasks", default="", help="comma-separated subset")
    parser.add_argument("--models-dir", type=Path, default=None, help="reuse a folder built before")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    print(f"device: {device}, torch {torch.__version__}, profile {args.profile}, size {args.size}")
    work = Path(tempfile.mkdtemp(prefix="roomrender-smoke-"))
    models_dir = args.models_dir or work / "models"
    if not (models_dir / "stable-diffusion-v1-5").exists():
        started = time.perf_counter()
        dtype = torch.float16 if cuda else torch.float32
        build_models_dir(models_dir, profile=args.profile, dtype=dtype)
        print(f"built random {args.profile} models in {models_dir} ({time.perf_counter() - started:.0f}s)")

    data = load_data_file("diffusers_registry.json")
    data["defaults"]["resolution"] = args.size
    if args.steps:
        for entry in data["tasks"].values():
            entry["steps"] = args.steps
    parse_registry(data)
    registry_file = work / "registry.json"
    registry_file.write_text(json.dumps(data))

    settings = Settings(data_dir=work / "data", engine="diffusers", models_dir=models_dir,
                        diffusers_registry=registry_file, max_output_pixels=10**9)
    services = build_services(settings)
    owner, _ = services.keys.create("smoke")
    cases = requests_for(args.size)
    chosen = [t.strip() for t in args.tasks.split(",") if t.strip()] or list(cases)
    results: list[dict[str, Any]] = []
    failures = 0
    print(f"{'task':<16}{'cold s':>9}{'warm s':>9}{'peak GiB':>10}  result")
    for task in chosen:
        fields, size = cases[task]
        fields = {"task": task, **fields}
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        cold, _ = run_task(services, owner, fields, size, args.n)
        warm, outcome = run_task(services, owner, fields, size, args.n)
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
        failures += not outcome.startswith("ok")
        print(f"{task:<16}{cold:>9.2f}{warm:>9.2f}{peak:>10.2f}  {outcome}", flush=True)
        results.append({"task": task, "cold_s": round(cold, 3), "warm_s": round(warm, 3),
                        "peak_gib": round(peak, 2), "result": outcome})
    if args.json:
        args.json.write_text(json.dumps({"device": device, "profile": args.profile, "size": args.size,
                                         "steps": args.steps, "n": args.n, "results": results}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
