"""GPU throughput (issue 7): plain diffusers against roomrender's whole service, in one run.

Workload `bench` (the issue's): SD 1.5 + one ControlNet (the M-LSD one, fed by the engine's
straight-lines preprocessor), img2img at 512x512, 20 steps, guidance 7, strength 0.8, fp16 on
CUDA. Workload `restyle`: the packaged restyle pipeline (inpainting SD 1.5 + M-LSD and
segmentation ControlNets, UperNet segmentation for the mask and control, 30 steps, guidance 7.5).
Weights are random, full-size (random_models.py; nothing is downloaded).

Measured:
1. plain diffusers, the bench workload, same inputs every call, preprocessing excluded:
   eager batch 1, eager batch 8, compiled batch 8 (channels_last, fused QKV, torch.compile: the
   recipe of the engine's compiled path);
2. the service: `roomrender serve` in a subprocess (ROOMRENDER_ENGINE=diffusers, warm-up at
   start), 64 jobs submitted concurrently over HTTP (POST /v1/jobs, one image each, different
   seeds), until every job has succeeded; then one job at a time on the idle server. Per
   workload, in quality mode and (with the LCM-LoRA) in the few-step mode (speed=fast).
3. live previews (issue 17): the engine's text_to_image job (SD 1.5, the bench's size and
   steps) with a TAESD preview every 5 steps against the same job without, alternated, each
   --repeats times: the previews' share of the job's time (goal: under 3%).
Printed: images/s, p50/p95 job latency (created → finished, server clock: queue wait, GPU and
storing the image included), peak memory (plain: torch's peak allocation; service: the server
process's GPU memory as nvidia-smi reports it, sampled every 0.2 s; on CPU its peak RSS), and
each rate's ratio to plain eager batch 1 and plain compiled batch 8.

    .venv/bin/python bench/gpu.py                          # GPU host: one H100, ~25 min with compiling
    .venv/bin/python bench/gpu.py --compile-mode off       # eager only, quicker
    .venv/bin/python bench/gpu.py --profile tiny           # CPU dry run (64 px, 2 steps)
    .venv/bin/python bench/gpu.py --only-previews --size 256 --steps 10   # previews alone
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import torch
from PIL import Image

from roomrender.catalog import load_data_file
from roomrender.engines.diffusers.compiled import Compiler
from roomrender.engines.diffusers.preprocessors import straight_lines
from roomrender.engines.diffusers.random_models import build_models_dir
from roomrender.samples import room_image

MODEL_KEYS = {"sd15", "controlnet_mlsd", "lcm_lora", "sd15_inpaint", "controlnet_seg", "segmentation", "taesd"}
PROMPT = "a modern living room, interior design, photorealistic"


# -- inputs ---------------------------------------------------------------------------------------

def room(size: int, seed: int = 7) -> Image.Image:
    """A synthetic room photo, square."""
    return room_image(size, size, seed)


def jpeg_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def registry_for(workload: str, args: argparse.Namespace) -> dict[str, Any]:
    data = load_data_file("diffusers_registry.json")
    data["defaults"]["resolution"] = args.size
    data["defaults"]["max_batch_images"] = args.batch
    data["defaults"]["fast"]["steps"] = args.fast_steps
    if workload == "bench":
        data["tasks"]["restyle"] = {
            "pipeline": "StableDiffusionControlNetImg2ImgPipeline", "kind": "img2img", "base": "sd15",
            "controlnets": [{"model": "controlnet_mlsd", "input": "lines", "scale": 1.0}],
            "steps": args.steps, "guidance": args.guidance, "strength": args.strength}
    elif args.profile == "tiny":
        data["tasks"]["restyle"]["steps"] = args.steps
    return data


# -- memory ---------------------------------------------------------------------------------------

class MemorySampler:
    """Peak device memory in use (GPU), or a process's peak RSS (CPU), sampled every 50 ms."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float:
        if torch.cuda.is_available():
            used = self._nvidia_smi()
            if used is not None:
                return used
            free, total = torch.cuda.mem_get_info()  # the whole device, this process included
            return (total - free) / 2**30
        if self.pid is None:
            return 0.0
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
        except OSError:
            pass
        return 0.0

    def _nvidia_smi(self) -> float | None:
        """The server process's GPU memory, as the driver counts it (None: no nvidia-smi)."""
        if self.pid is None or shutil.which("nvidia-smi") is None:
            return None
        try:
            out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True,
                                 timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        for line in out.splitlines():
            pid, _, used = line.partition(",")
            if pid.strip() == str(self.pid):
                return int(used) / 1024
        return 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.2 if torch.cuda.is_available() else 0.05):
            self.peak = max(self.peak, self._sample())

    def __enter__(self) -> MemorySampler:
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


# -- plain diffusers ------------------------------------------------------------------------------

def plain_pipeline(models_dir: Path, dtype: torch.dtype, device: str) -> Any:
    from diffusers import ControlNetModel, StableDiffusionControlNetImg2ImgPipeline, UniPCMultistepScheduler

    registry = load_data_file("diffusers_registry.json")["models"]
    controlnet = ControlNetModel.from_pretrained(models_dir / registry["controlnet_mlsd"]["id"],
                                                 torch_dtype=dtype, local_files_only=True)
    pipeline = StableDiffusionControlNetImg2ImgPipeline.from_pretrained(
        models_dir / registry["sd15"]["id"], controlnet=controlnet, torch_dtype=dtype,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False, local_files_only=True)
    pipeline.scheduler = UniPCMultistepScheduler.from_config(pipeline.scheduler.config)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


def step_done(_pipe: Any, _step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
    # CUDA graphs (reduce-overhead): the last step's outputs may be overwritten from now on.
    Compiler.step_done()
    return tensors


def plain_run(pipeline: Any, batch: int, args: argparse.Namespace, image: Image.Image,
              control: Image.Image) -> float:
    """Seconds for one pipeline call of `batch` images."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.inference_mode():
        pipeline(prompt=[PROMPT] * batch, image=[image] * batch, control_image=[control] * batch,
                 num_inference_steps=args.steps, guidance_scale=args.guidance, strength=args.strength,
                 generator=[torch.Generator("cpu").manual_seed(i) for i in range(batch)], output_type="pil",
                 callback_on_step_end=step_done)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def plain_bench(models_dir: Path, args: argparse.Namespace, dtype: torch.dtype, device: str) -> list[dict[str, Any]]:
    image = room(args.size)
    control = straight_lines(image)
    rows = []
    pipeline = plain_pipeline(models_dir, dtype, device)
    runs: list[tuple[str, int, bool]] = [("plain eager b1", 1, False),
                                         (f"plain eager b{args.batch}", args.batch, False)]
    if args.compile_mode != "off":
        runs.append((f"plain compiled b{args.batch}", args.batch, True))
    for name, batch, compiled in runs:
        if compiled:
            started = time.perf_counter()
            Compiler(args.compile_mode).prepare(pipeline)
            for _ in range(2):  # compiles (and, in reduce-overhead mode, records the graphs)
                plain_run(pipeline, batch, args, image, control)
            print(f"  {name}: compiled in {time.perf_counter() - started:.0f}s", flush=True)
        else:
            plain_run(pipeline, batch, args, image, control)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        seconds = [plain_run(pipeline, batch, args, image, control) for _ in range(args.repeats)]
        memory = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
        rate = batch * len(seconds) / sum(seconds)
        rows.append({"run": name, "images_per_s": rate, "p50_s": statistics.median(seconds),
                     "p95_s": max(seconds), "memory_gib": memory, "note": "latency = one call"})
        print(f"  {name}: {rate:.2f} images/s", flush=True)
    del pipeline
    torch._dynamo.reset()
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return rows


# -- the service ----------------------------------------------------------------------------------

def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


class Server:
    """`roomrender serve` in a subprocess, with its own data folder and a key."""

    def __init__(self, workload: str, registry: dict[str, Any], models_dir: Path, work: Path,
                 args: argparse.Namespace) -> None:
        self.folder = work / f"serve-{workload}"
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        (self.folder / "registry.json").write_text(json.dumps(registry))
        self.port = random.randint(20000, 60000)
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "ROOMRENDER_ENGINE": "diffusers", "ROOMRENDER_MODELS_DIR": str(models_dir),
            "ROOMRENDER_DIFFUSERS_REGISTRY": str(self.folder / "registry.json"),
            "ROOMRENDER_DATA_DIR": str(self.folder / "data"), "ROOMRENDER_HOST": "127.0.0.1",
            "ROOMRENDER_PORT": str(self.port), "ROOMRENDER_DIFFUSERS_COMPILE": args.compile_mode,
            "ROOMRENDER_DIFFUSERS_BUCKETS": f"{args.size}x{args.size}",
            "ROOMRENDER_DIFFUSERS_BATCH_SIZES": args.batch_sizes,
            "ROOMRENDER_DIFFUSERS_WARMUP_TASKS": "restyle",
            "ROOMRENDER_DIFFUSERS_MAX_BATCH_IMAGES": str(args.batch),
            "ROOMRENDER_BATCH_MAX_IMAGES": str(args.batch),
            "ROOMRENDER_BATCH_WAIT_MS": str(args.batch_wait_ms),
            # Compiled artefacts are kept across the bench's runs and server restarts.
            "TORCHINDUCTOR_CACHE_DIR": str(work / "torch-compile-cache"),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.key = ""
        self.startup_s = 0.0
        self.args = args

    def _cli(self) -> list[str]:
        return [sys.executable, "-m", "roomrender.cli"]

    def start(self) -> None:
        created = subprocess.run([*self._cli(), "keys", "create", "--name", "bench"], env=self.env,
                                 capture_output=True, text=True, check=True)
        self.key = created.stdout.strip().splitlines()[-1]
        log = open(self.folder / "serve.log", "wb")  # noqa: SIM115 - closed with the process
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [*self._cli(), "serve", "--workers", str(self.args.workers), "--log-level", "warning"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.args.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"roomrender serve exited: see {self.folder / 'serve.log'}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    self.startup_s = time.perf_counter() - started
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("roomrender serve did not answer in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def submit_and_wait(server: Server, client: httpx.Client, bodies: list[dict[str, Any]],
                    poll_s: float) -> tuple[list[dict[str, Any]], float]:
    """Submit every body at once (one thread each), then poll until all have finished."""
    assert len(bodies) <= 100, "the list endpoint shows 100 jobs at most"
    headers = {"Authorization": f"Bearer {server.key}"}

    def post(body: dict[str, Any]) -> str:
        response = client.post(f"{server.base}/v1/jobs", json=body, headers=headers)
        response.raise_for_status()
        return response.json()["id"]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        ids = list(pool.map(post, bodies))
    pending = set(ids)
    finished: dict[str, dict[str, Any]] = {}
    while pending:
        if len(ids) == 1:
            seen = [client.get(f"{server.base}/v1/jobs/{ids[0]}", headers=headers).json()]
        else:
            # One request for all (they are the newest jobs of the key): polling each would
            # load the server process, whose GIL the worker shares.
            seen = client.get(f"{server.base}/v1/jobs", params={"limit": 100}, headers=headers).json()["data"]
        for job in seen:
            if job["id"] in pending and job["status"] in ("succeeded", "failed", "canceled"):
                finished[job["id"]] = job
                pending.discard(job["id"])
        if pending:
            time.sleep(poll_s)
    wall = time.perf_counter() - started
    return [finished[job_id] for job_id in ids], wall


def service_rows(workload: str, server: Server, args: argparse.Namespace, speed: str) -> list[dict[str, Any]]:
    image = jpeg_uri(room(args.size))
    label = f"service {workload}" + (" fast" if speed == "fast" else "")
    body = {"task": "restyle", "image": image, "style": "modern", "room_type": "living_room", "speed": speed}
    rows = []
    with httpx.Client(timeout=600, limits=httpx.Limits(max_connections=args.jobs + 8)) as client:
        with MemorySampler(server.process.pid if server.process else None) as memory:
            jobs, wall = submit_and_wait(server, client, [{**body, "seed": i} for i in range(args.jobs)], 0.1)
        failed = [job for job in jobs if job["status"] != "succeeded"]
        if failed:
            raise RuntimeError(f"{label}: {len(failed)} job(s) failed: {failed[0]['error']}")
        created = [parse_time(job["created_at"]) for job in jobs]
        done = [parse_time(job["finished_at"]) for job in jobs]
        latencies = [end - start for start, end in zip(created, done, strict=True)]
        images = sum(len(job["outputs"]) for job in jobs)
        # The stored image is there: download one.
        output = client.get(jobs[0]["outputs"][0]["url"], headers={"Authorization": f"Bearer {server.key}"})
        output.raise_for_status()
        rows.append({"run": f"{label} x{args.jobs} concurrent", "images_per_s": images / (max(done) - min(created)),
                     "p50_s": statistics.median(latencies), "p95_s": percentile(latencies, 0.95),
                     "memory_gib": memory.peak, "note": f"client wall {wall:.1f}s"})
        print(f"  {rows[-1]['run']}: {rows[-1]['images_per_s']:.2f} images/s", flush=True)
        # One job at a time on the idle server.
        single = []
        for seed in range(args.idle_jobs):
            (job,), _ = submit_and_wait(server, client, [{**body, "seed": 1000 + seed}], 0.005)
            single.append(parse_time(job["finished_at"]) - parse_time(job["created_at"]))
        rows.append({"run": f"{label} idle, 1 job", "images_per_s": len(single) / sum(single),
                     "p50_s": statistics.median(single), "p95_s": percentile(single, 0.95),
                     "memory_gib": memory.peak, "note": f"{args.idle_jobs} jobs one after another"})
        print(f"  {rows[-1]['run']}: p50 {rows[-1]['p50_s']:.2f}s", flush=True)
    return rows


def service_bench(workload: str, models_dir: Path, work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    server = Server(workload, registry_for(workload, args), models_dir, work, args)
    try:
        server.start()
        print(f"  service {workload}: ready in {server.startup_s:.0f}s (warm-up included)", flush=True)
        rows = service_rows(workload, server, args, "quality")
        if not args.no_fast:
            rows += service_rows(workload, server, args, "fast")
        for row in rows:
            row["startup_s"] = server.startup_s
        return rows
    finally:
        server.stop()


# -- main -----------------------------------------------------------------------------------------

def preview_bench(models_dir: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """A text_to_image job with live previews every 5 steps against the same job without."""
    from roomrender.canonical.models import GenerationRequest
    from roomrender.engines.base import BatchContext, EngineJob
    from roomrender.engines.diffusers.engine import DiffusersEngine
    from roomrender.engines.diffusers.registry import parse_registry

    data = load_data_file("diffusers_registry.json")
    data["defaults"]["resolution"] = args.size
    data["defaults"]["preview"]["every"] = 5
    engine = DiffusersEngine(parse_registry(data), models_dir)
    previews: list[Image.Image] = []
    with_previews = BatchContext(lambda *_: None, lambda _: False, lambda _job, image: previews.append(image))
    without = BatchContext(lambda *_: None, lambda _: False)
    job = EngineJob("p", GenerationRequest(task="text_to_image", prompt=PROMPT, steps=args.steps, seed=1,
                                           width=args.size, height=args.size))
    engine.generate([job], with_previews)  # loads everything, TAESD included
    times: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.repeats):
        for mode, context in (("off", without), ("on", with_previews)):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            started = time.perf_counter()
            engine.generate([job], context)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[mode].append(time.perf_counter() - started)
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    per_job = len(previews) // (args.repeats + 1)
    print(f"previews: {per_job} per job of {args.steps} steps; job {off * 1000:.0f} ms without, "
          f"{on * 1000:.0f} ms with: +{(on - off) / off * 100:.2f}% (goal: under 3%)", flush=True)
    return [{"run": "text_to_image, no previews", "seconds": round(off, 3)},
            {"run": f"text_to_image, {per_job} previews", "seconds": round(on, 3),
             "overhead_percent": round((on - off) / off * 100, 2)}]


def print_table(rows: list[dict[str, Any]]) -> None:
    base = next((r["images_per_s"] for r in rows if r["run"] == "plain eager b1"), None)
    compiled = next((r["images_per_s"] for r in rows if r["run"].startswith("plain compiled")), None)
    print()
    print(f"{'run':<44}{'images/s':>10}{'p50 s':>9}{'p95 s':>9}{'mem GiB':>9}"
          f"{'x eager b1':>12}{'x compiled':>12}  note")
    for row in rows:
        ratio_base = f"{row['images_per_s'] / base:.2f}" if base else "-"
        ratio_compiled = f"{row['images_per_s'] / compiled:.2f}" if compiled else "-"
        print(f"{row['run']:<44}{row['images_per_s']:>10.2f}{row['p50_s']:>9.3f}{row['p95_s']:>9.3f}"
              f"{row['memory_gib']:>9.2f}{ratio_base:>12}{ratio_compiled:>12}  {row.get('note', '')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["full", "tiny"], default="full")
    parser.add_argument("--size", type=int, default=None, help="working size (512; tiny: 64)")
    parser.add_argument("--steps", type=int, default=None, help="bench workload steps (20; tiny: 2)")
    parser.add_argument("--fast-steps", type=int, default=None, help="few-step mode steps (6; tiny: 2)")
    parser.add_argument("--guidance", type=float, default=7.0)
    parser.add_argument("--strength", type=float, default=0.8)
    parser.add_argument("--batch", type=int, default=8, help="images per batch")
    parser.add_argument("--batch-sizes", default="1,8",
                        help="the compiled path's padded batch sizes (the service's default is 1,2,4,8; "
                             "64 concurrent jobs make batches of 8 and an idle job a batch of 1)")
    parser.add_argument("--batch-wait-ms", type=int, default=5)
    parser.add_argument("--compile-mode", default=None,
                        help="torch.compile mode for plain compiled and the service "
                             "(default on CUDA; off on CPU; eager-backend: dynamo tracing only)")
    parser.add_argument("--jobs", type=int, default=64, help="concurrent HTTP submissions")
    parser.add_argument("--idle-jobs", type=int, default=5, help="single jobs timed on the idle server")
    parser.add_argument("--workers", type=int, default=2, help="in-process workers of the server")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per plain run")
    parser.add_argument("--workloads", default="bench,restyle")
    parser.add_argument("--skip-plain", action="store_true")
    parser.add_argument("--no-fast", action="store_true", help="skip the few-step (LCM-LoRA) runs")
    parser.add_argument("--startup-timeout", type=float, default=1800)
    parser.add_argument("--models-dir", type=Path, default=None, help="reuse a folder built before")
    parser.add_argument("--work-dir", type=Path, default=None, help="server data, compile cache")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--only-previews", action="store_true", help="only the live previews' cost")
    args = parser.parse_args()
    tiny = args.profile == "tiny"
    args.size = args.size or (64 if tiny else 512)
    args.steps = args.steps or (2 if tiny else 20)
    args.fast_steps = args.fast_steps or (2 if tiny else 6)
    cuda = torch.cuda.is_available()
    args.compile_mode = args.compile_mode or ("default" if cuda else "off")

    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    dtype = torch.float16 if cuda else torch.float32
    print(f"device: {device}, torch {torch.__version__}, profile {args.profile}, {args.size}x{args.size}, "
          f"{args.steps} steps, guidance {args.guidance}, strength {args.strength}, {dtype}, "
          f"batch {args.batch}, compile {args.compile_mode}", flush=True)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="roomrender-gpu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    models_dir = args.models_dir or work / "models"
    if not (models_dir / "stable-diffusion-v1-5").exists():
        started = time.perf_counter()
        build_models_dir(models_dir, profile=args.profile, dtype=dtype,
                         only={"sd15", "taesd"} if args.only_previews else MODEL_KEYS)
        print(f"built random {args.profile} models in {models_dir} ({time.perf_counter() - started:.0f}s)", flush=True)

    rows: list[dict[str, Any]] = []
    if args.only_previews:
        rows = preview_bench(models_dir, args)
        if args.json:
            args.json.write_text(json.dumps({"device": device, "rows": rows}, indent=1))
        return 0
    if not args.skip_plain:
        rows += plain_bench(models_dir, args, dtype, "cuda" if cuda else "cpu")
    for workload in [w.strip() for w in args.workloads.split(",") if w.strip()]:
        rows += service_bench(workload, models_dir, work, args)
    print_table(rows)
    rows += preview_bench(models_dir, args)
    if args.json:
        args.json.write_text(json.dumps({"device": device, "args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
