"""Issue 7 on CPU: batching gives each job the images it gets alone, the compiled path's buckets
and padded batch sizes (traced by dynamo with its eager backend: no code generation on CPU),
warm-up, and the few-step (LCM-LoRA) mode."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from roomrender.canonical.models import GenerationRequest, Task  # noqa: E402
from roomrender.cli import app as cli_app  # noqa: E402
from roomrender.engines.base import BatchContext, EngineJob  # noqa: E402
from roomrender.engines.diffusers.compiled import (  # noqa: E402
    nearest_bucket,
    padded_batch_size,
    parse_sizes,
)
from roomrender.engines.diffusers.engine import DiffusersEngine  # noqa: E402
from roomrender.engines.diffusers.registry import load_registry  # noqa: E402
from tests.conftest import make_room_photo  # noqa: E402

NO_CONTEXT = BatchContext(lambda *_: None, lambda _: False)
# Batched and alone, the same image differs only by float rounding (GEMMs of another shape sum
# in another order). The tiny random UNet's output is noise-like and the VAE decodes it with a
# gain, so a rounding difference of 1e-6 in the latents may flip a pixel's uint8 rounding: allow
# 2/255 per pixel, and require the mean to stay far below that.
MAX_PIXEL_DIFF = 2
MEAN_PIXEL_DIFF = 0.05


def photo(width: int, height: int, seed: int) -> Image.Image:
    image = Image.open(io.BytesIO(make_room_photo(width, height)))
    pixels = np.asarray(image.convert("RGB")).astype(int)
    shifted = np.clip(pixels + np.random.default_rng(seed).integers(-30, 30, 3), 0, 255)
    return Image.fromarray(shifted.astype(np.uint8), "RGB")


def job(job_id: str, image: Image.Image | None = None, **fields: Any) -> EngineJob:
    fields.setdefault("task", "restyle")
    request = GenerationRequest(image="x" if image is not None else None, style="modern", **fields)
    return EngineJob(job_id, request, {"image": image} if image is not None else {})


def pixels(results: list[Any]) -> list[list[np.ndarray]]:
    assert all(isinstance(r, list) for r in results), results
    return [[np.asarray(r.image).astype(int) for r in result] for result in results]


def assert_same_images(alone: list[np.ndarray], batched: list[np.ndarray]) -> None:
    assert len(alone) == len(batched)
    for a, b in zip(alone, batched, strict=True):
        assert a.shape == b.shape
        difference = np.abs(a - b)
        assert difference.max() <= MAX_PIXEL_DIFF and difference.mean() <= MEAN_PIXEL_DIFF, (
            difference.max(), difference.mean())


def new_engine(models_dir: Path, registry_file: Path, **options: Any) -> DiffusersEngine:
    return DiffusersEngine(load_registry(registry_file), models_dir, **options)


@pytest.fixture(scope="module")
def eager(models_dir: Path, registry_file: Path) -> DiffusersEngine:
    return new_engine(models_dir, registry_file)


@pytest.fixture(scope="module")
def compiled(models_dir: Path, registry_file: Path, tmp_path_factory: pytest.TempPathFactory) -> DiffusersEngine:
    return new_engine(models_dir, registry_file, compile_mode="eager-backend",
                      buckets=[(64, 64), (64, 48)], batch_sizes=[1, 4],
                      compile_cache=tmp_path_factory.mktemp("compile-cache"))


def three_jobs() -> list[EngineJob]:
    return [job("a", photo(64, 48, 1), n=2, seed=5),
            job("b", photo(64, 48, 2), n=1, seed=11, prompt="with a fireplace"),
            job("c", photo(64, 48, 3), n=3, seed=20)]


def counting_calls(engine: DiffusersEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of images of each pipeline call the engine makes."""
    calls: list[int] = []
    real_pipeline = engine.store.pipeline

    def counting(spec: Any, fast: bool = False) -> Any:
        pipeline = real_pipeline(spec, fast)
        original_call = type(pipeline).__call__

        class Counted(type(pipeline)):  # type: ignore[misc]
            def __call__(self, **kwargs: Any) -> Any:
                calls.append(len(kwargs["prompt_embeds"]))
                return original_call(self, **kwargs)

        pipeline.__class__ = Counted
        return pipeline

    monkeypatch.setattr(engine.store, "pipeline", counting)
    return calls


def test_jobs_batched_together_get_the_images_they_get_alone(
        eager: DiffusersEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = three_jobs()
    keys = {eager.batch_key(j.request, 64, 48) for j in jobs}
    assert len(keys) == 1, "jobs of different n and prompts share a batch"
    calls = counting_calls(eager, monkeypatch)

    batched = pixels(eager.generate(jobs, NO_CONTEXT))
    assert calls == [6], "one pipeline call for the 2 + 1 + 3 images"
    alone = [pixels(eager.generate([j], NO_CONTEXT))[0] for j in jobs]

    assert [len(images) for images in batched] == [2, 1, 3]
    for alone_images, batched_images in zip(alone, batched, strict=True):
        assert_same_images(alone_images, batched_images)
    # Each image has its own generator: the variants of a job differ.
    assert np.abs(batched[2][0] - batched[2][1]).mean() > 5


def test_buckets_and_padded_batch_sizes() -> None:
    buckets = parse_sizes("512x512,768x512,512x768")
    assert nearest_bucket(1024, 768, buckets) == (768, 512)
    assert nearest_bucket(600, 610, buckets) == (512, 512)
    assert nearest_bucket(300, 900, buckets) == (512, 768)
    assert [padded_batch_size(n, [1, 2, 4, 8]) for n in (1, 2, 3, 5, 8, 9)] == [1, 2, 4, 8, 8, 9]
    with pytest.raises(ValueError):
        parse_sizes("500x500")


def test_the_compiled_path_pads_the_batch_and_keeps_each_jobs_images(
        compiled: DiffusersEngine, eager: DiffusersEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_calls(compiled, monkeypatch)
    jobs = [job("a", photo(64, 48, 1), task="sketch_render", n=2, seed=5),
            job("b", photo(60, 44, 2), task="sketch_render", n=1, seed=11)]
    results = compiled.generate(jobs, NO_CONTEXT)

    # Three images padded to four (a compiled batch size); each job gets its own back, at the
    # size of its input (60x44 ran in the 64x48 bucket).
    assert calls == [4]
    images = pixels(results)
    assert [i.shape for i in images[0]] == [(48, 64, 3)] * 2 and images[1][0].shape == (44, 60, 3)
    from torch._dynamo.eval_frame import OptimizedModule

    pipeline = compiled.store.pipeline(compiled.registry.task(Task.sketch_render))
    assert isinstance(pipeline.unet, OptimizedModule) and isinstance(pipeline.controlnet, OptimizedModule)
    assert pipeline.unet._orig_mod.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    # Same seeds, same images as the eager engine (64x48 is also its working size).
    assert_same_images(pixels(eager.generate([jobs[0]], NO_CONTEXT))[0], images[0])


def test_warm_up_runs_every_bucket_at_every_batch_size_in_both_speeds(
        models_dir: Path, registry_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = new_engine(models_dir, registry_file, compile_mode="default", buckets=[(64, 64), (64, 48)],
                        batch_sizes=[1, 2, 4], warmup_tasks=["restyle"])
    seen: list[tuple[str, tuple[int, int], int]] = []

    def generate(batch: list[EngineJob], _context: Any) -> list[Any]:
        (only,) = batch
        seen.append((only.request.speed, only.image.size, only.request.n))
        return [[]]

    monkeypatch.setattr(engine, "generate", generate)
    runs = engine.warm_up()
    assert all(run["error"] is None for run in runs)
    assert sorted(seen) == sorted((speed, size, n) for speed in ("quality", "fast")
                                  for size in ((64, 64), (64, 48)) for n in (1, 2, 4))


def test_warm_up_without_compiling_loads_and_runs_each_task_once(eager: DiffusersEngine) -> None:
    eager.warmup_tasks = ["restyle", "segment", "no-such-task"]
    runs = eager.warm_up()
    assert [(r["task"], r["batch"], r["error"]) for r in runs] == [("sd15:restyle", 1, None), ("sd15:restyle", 1, None)]


def test_fast_mode_runs_the_lcm_lora_with_the_lcm_scheduler(eager: DiffusersEngine) -> None:
    fast = job("f", photo(64, 48, 1), seed=5, speed="fast")
    quality = job("q", photo(64, 48, 1), seed=5)
    assert eager.batch_key(fast.request, 64, 48) != eager.batch_key(quality.request, 64, 48)
    settings = eager.planner.call_settings(fast.request, eager.spec_for(fast.request))
    assert settings["fast"] and settings["guidance"] == 1.0

    fast_images = pixels(eager.generate([fast], NO_CONTEXT))[0]
    quality_images = pixels(eager.generate([quality], NO_CONTEXT))[0]

    spec = eager.registry.task(Task.restyle)
    fast_pipeline = eager.store.pipeline(spec, True)
    assert type(fast_pipeline.scheduler).__name__ == "LCMScheduler"
    assert fast_pipeline.unet is not eager.store.pipeline(spec).unet
    assert np.abs(fast_images[0] - quality_images[0]).mean() > 1


def test_without_the_lora_fast_halves_the_steps_and_models_check_says_it_is_optional(
        models_dir: Path, registry_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    partial = tmp_path / "models"
    for owner in models_dir.iterdir():
        if owner.name != "latent-consistency":
            partial.mkdir(exist_ok=True)
            (partial / owner.name).symlink_to(owner)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    engine = new_engine(partial, registry_file)
    request = GenerationRequest(task="restyle", image="x", speed="fast", steps=None)
    settings = engine.planner.call_settings(request, engine.spec_for(request))
    assert not settings["fast"]

    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_REGISTRY", str(registry_file))
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(cli_app, ["models", "check", "--models-dir", str(partial)])
    assert result.exit_code == 0, result.output
    assert "latent-consistency/lcm-lora-sdv1-5" in result.output and "optional" in result.output


def test_a_registry_file_can_run_restyle_as_controlnet_img2img(
        models_dir: Path, registry_file: Path, tmp_path: Path) -> None:
    """The bench workload (bench/gpu.py): SD 1.5 + one ControlNet, img2img."""
    import json

    data = json.loads(registry_file.read_text())
    data["tasks"]["restyle"] = {"pipeline": "StableDiffusionControlNetImg2ImgPipeline", "kind": "img2img",
                                "base": "sd15",
                                "controlnets": [{"model": "controlnet_mlsd", "input": "lines", "scale": 1.0}],
                                "steps": 2, "guidance": 7.0, "strength": 0.8}
    (tmp_path / "registry.json").write_text(json.dumps(data))
    engine = new_engine(models_dir, tmp_path / "registry.json")

    results = pixels(engine.generate([job("a", photo(64, 48, 1), n=2, seed=1)], NO_CONTEXT))
    assert [i.shape for i in results[0]] == [(48, 64, 3)] * 2


def test_the_throughput_settings_come_from_the_environment(
        settings: Any, models_dir: Path, registry_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_COMPILE", "eager-backend")
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_BUCKETS", "64x64,64x48")
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_BATCH_SIZES", "8,1")
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_WARMUP_TASKS", "restyle,stage")
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_MAX_BATCH_IMAGES", "8")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(settings.data_dir / "inductor"))
    engine = DiffusersEngine.from_settings(settings.model_copy(update={
        "engine": "diffusers", "models_dir": models_dir, "diffusers_registry": registry_file}))

    assert engine.compiler.mode == "eager-backend"
    assert engine.buckets == [(64, 64), (64, 48)] and engine.batch_sizes == [1, 8]
    assert engine.warmup_tasks == ["restyle", "stage"] and engine.max_batch_images == 8
