"""Issue 31 on CPU: the FLUX.1-schnell and Qwen-Image-Edit families through their real diffusers
pipelines, on tiny random components loaded by the engine's own code; sizes, seamless tiles,
batching, the load plan for the memory budget, `models check` and `models pull`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from roomrender.canonical.errors import InvalidRequest, Unsupported  # noqa: E402
from roomrender.canonical.models import GenerationRequest, Task  # noqa: E402
from roomrender.engines.base import BatchContext, EngineJob, RenderedImage  # noqa: E402
from roomrender.engines.diffusers import flux  # noqa: E402
from roomrender.engines.diffusers.cache import GIB  # noqa: E402
from roomrender.engines.diffusers.engine import DiffusersEngine  # noqa: E402
from roomrender.engines.diffusers.registry import load_registry  # noqa: E402
from roomrender.engines.diffusers.whole_pipelines import LoadPlan, memory_line, plan_load  # noqa: E402

pytestmark = pytest.mark.torch
NO_CONTEXT = BatchContext(lambda *_: None, lambda _: False)


@pytest.fixture(scope="module")
def flow_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from roomrender.engines.diffusers.random_models import build_models_dir

    return build_models_dir(tmp_path_factory.mktemp("flow-models"),
                            only={"flux_schnell", "qwen_image_edit", "segmentation"})


@pytest.fixture(scope="module")
def engine(flow_models: Path, registry_file: Path) -> DiffusersEngine:
    return DiffusersEngine(load_registry(registry_file), flow_models)


def run(engine: DiffusersEngine, *jobs: EngineJob) -> list[Any]:
    results = engine.generate(list(jobs), NO_CONTEXT)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def text_job(task: Task = Task.text_to_image, job_id: str = "j", **fields: Any) -> EngineJob:
    fields.setdefault("prompt", "a sunlit living room, oak floor")
    fields.setdefault("seed", 3)
    request = GenerationRequest(task=task, model="flux_schnell", **fields)
    return EngineJob(job_id, request, {})


def test_flux_text_to_image_every_fluw_ratio(engine: DiffusersEngine) -> None:
    # Luw's fluw ratios, planned at the model's own 1024 px (the test registry's 64 px is too
    # coarse for a shape).
    spec = replace(engine.spec_for(text_job().request), resolution=1024)
    for ratio in ("16:9", "3:2", "4:3", "1:1", "3:4", "2:3", "9:16"):
        job = text_job(aspect_ratio=ratio)
        plan = engine.planner.plan(job, spec)
        # Working sizes are multiples of the model's 16 px; the image is the ratio's shape.
        assert plan.work_size[0] % 16 == 0 and plan.work_size[1] % 16 == 0
        across, down = (int(p) for p in ratio.split(":"))
        assert abs(plan.target_size[0] / plan.target_size[1] - across / down) < 0.05
    [images] = run(engine, text_job(aspect_ratio="3:2", n=2))
    assert len(images) == 2 and all(isinstance(i, RenderedImage) for i in images)
    assert images[0].image.size == (64, 40)
    assert not np.array_equal(np.asarray(images[0].image), np.asarray(images[1].image))


def test_flux_batches_jobs_each_getting_its_own_images(engine: DiffusersEngine) -> None:
    alone = run(engine, text_job(job_id="a", n=1))[0][0].image
    key_a = engine.batch_key(text_job().request, None, None)
    key_b = engine.batch_key(text_job(prompt="a much longer prompt " * 30).request, None, None)
    # T5 reads the whole prompt: a long prompt batches with a short one.
    assert key_a == key_b
    together = run(engine, text_job(job_id="a", n=1), text_job(job_id="b", n=2, seed=9))
    assert [len(r) for r in together] == [1, 2]
    assert np.abs(np.asarray(alone, dtype=np.int16) - np.asarray(together[0][0].image, dtype=np.int16)).max() <= 2


def test_flux_pattern_is_a_tile(engine: DiffusersEngine) -> None:
    spec = engine.spec_for(text_job(Task.pattern).request)
    assert flux.is_tileable(spec)
    pipeline = engine.store.pipeline(spec)
    latents = torch.randn(1, pipeline.vae.config.latent_channels, 8, 8)
    with torch.inference_mode():
        plain = pipeline.vae.decode(latents).sample
        with flux.circular_vae(pipeline.vae):
            tiled = pipeline.vae.decode(latents).sample
            rolled = pipeline.vae.decode(latents.roll(3, dims=3)).sample
        after = pipeline.vae.decode(latents).sample
    # Circular padding: decoding shifted latents is the shifted picture (8 px a latent), seams
    # included; outside the context the VAE pads with zeros again.
    assert torch.allclose(rolled, tiled.roll(24, dims=3), atol=1e-4)
    assert not torch.allclose(plain, tiled, atol=1e-4)
    assert torch.equal(plain, after)
    [images] = run(engine, text_job(Task.pattern, width=64, height=64))
    assert images[0].image.size == (64, 64)
    with pytest.raises(InvalidRequest, match="preview engine"):
        engine.planner.plan(EngineJob("p", GenerationRequest(task=Task.pattern, model="flux_schnell", image="x"),
                                      {"image": Image.new("RGB", (64, 64))}), spec)


def test_roll_packed_moves_whole_patches() -> None:
    grid = torch.arange(16, dtype=torch.float32).reshape(1, 4, 4, 1)
    rolled = flux.roll_packed(grid.reshape(1, 16, 1), 64, 64, 8, (1, 2))
    assert torch.equal(rolled.reshape(1, 4, 4, 1), grid.roll((1, 2), dims=(1, 2)))


def test_load_plan_for_the_memory_budget() -> None:
    registry = load_registry()
    family = registry.family("flux_schnell")
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert plan_load(family, 80 * GIB, cuda) == LoadPlan()
    assert plan_load(family, None, cuda) == LoadPlan()
    # 24 GB: the transformer in NF4; Qwen's quantized need fits too, FLUX needs no offload.
    assert plan_load(family, 22 * GIB, cuda, lambda _b: True) == LoadPlan(("transformer",), "bitsandbytes_4bit")
    qwen = registry.family("qwen_edit")
    assert plan_load(qwen, 22 * GIB, cuda, lambda _b: True).quantize == ("transformer", "text_encoder")
    assert plan_load(qwen, 12 * GIB, cuda, lambda _b: True).offload
    assert plan_load(family, 22 * GIB, cuda, lambda _b: False) == LoadPlan(offload=True)
    with pytest.raises(Unsupported, match="33.7 GB.*bitsandbytes"):
        plan_load(family, 22 * GIB, cpu, lambda _b: False)
    assert "33.7 GB in bf16" in (memory_line(family) or "")


def test_non_commercial_flux_is_no_default() -> None:
    registry = load_registry()
    for spec in registry.all_specs():
        for model in registry.models_of(spec):
            assert not registry.is_non_commercial(model), (spec.name, model.id)
    assert registry.models["flux_schnell"].licence == registry.models["qwen_image_edit"].licence == "apache-2.0"


QWEN_CASES = [
    ("instruct", {"prompt": "make the walls sage green", "extra_images": ["r1", "r2"]}),
    ("restyle", {"style": "scandinavian", "room_type": "living_room"}),
    ("empty_room", {}),
    ("stage", {"style": "modern"}),
    ("recolor", {"color": "#4A6B8A", "area": "wall"}),
    ("edit", {"prompt": "a green sofa"}),
]


@pytest.fixture
def small_conditions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Plus pipeline resizes every input to 1024² for its VAE and 384² for Qwen2.5-VL (module
    constants): at the tiny test size, 64² and 56² keep a CPU run to seconds."""
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as plus

    monkeypatch.setattr(plus, "VAE_IMAGE_SIZE", 64 * 64)
    monkeypatch.setattr(plus, "CONDITION_IMAGE_SIZE", 56 * 56)


@pytest.mark.slow
@pytest.mark.usefixtures("small_conditions")
@pytest.mark.parametrize(("task", "fields"), QWEN_CASES, ids=[c[0] for c in QWEN_CASES])
def test_qwen_edit_tasks(engine: DiffusersEngine, task: str, fields: dict[str, Any]) -> None:
    room = Image.new("RGB", (96, 64), (200, 196, 188))
    room.paste((120, 90, 60), (0, 40, 96, 64))
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (24, 16, 72, 48))
    images = {"image": room, "mask": mask, "extra_images.0": room.rotate(90), "extra_images.1": room}
    request = GenerationRequest(task=Task(task), model="qwen_edit", image="x", seed=1, n=2, **fields)
    [out] = run(engine, EngineJob("q", request, images))
    assert len(out) == 2 and out[0].image.size == (96, 64)
    if task == "edit":
        # The mask is a hard composite: outside it the photo's pixels stay.
        pixels = np.asarray(out[0].image, dtype=np.int16)
        assert np.abs(pixels[:8, :8] - np.asarray(room, dtype=np.int16)[:8, :8]).max() <= 2


def test_flow_families_pull_exact_files() -> None:
    from roomrender.engines.diffusers.pull import plan_pull

    registry = load_registry()
    repo = {
        "black-forest-labs/FLUX.1-schnell": [
            "model_index.json", "flux1-schnell.safetensors", "ae.safetensors", "README.md",
            "scheduler/scheduler_config.json", "text_encoder/config.json", "text_encoder/model.safetensors",
            "text_encoder_2/config.json", "text_encoder_2/model.safetensors.index.json",
            "text_encoder_2/model-00001-of-00002.safetensors", "text_encoder_2/model-00002-of-00002.safetensors",
            "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
            "tokenizer/vocab.json", "tokenizer_2/special_tokens_map.json", "tokenizer_2/spiece.model",
            "tokenizer_2/tokenizer.json", "tokenizer_2/tokenizer_config.json",
            "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors.index.json",
            "transformer/diffusion_pytorch_model-00001-of-00003.safetensors",
            "transformer/diffusion_pytorch_model-00002-of-00003.safetensors",
            "transformer/diffusion_pytorch_model-00003-of-00003.safetensors",
            "vae/config.json", "vae/diffusion_pytorch_model.safetensors"],
    }
    plan = plan_pull([registry.models["flux_schnell"]], lambda r: repo[r])
    files = plan["black-forest-labs/FLUX.1-schnell"]
    # Not the single-file checkpoints at the root, nor the README; every shard of the folders.
    assert "flux1-schnell.safetensors" not in files and "ae.safetensors" not in files and "README.md" not in files
    assert "transformer/diffusion_pytorch_model-00003-of-00003.safetensors" in files
    assert "tokenizer_2/spiece.model" in files and "model_index.json" in files
    assert len(files) == len(repo["black-forest-labs/FLUX.1-schnell"]) - 3


def test_models_check_states_memory_and_licence(flow_models: Path, registry_file: Path) -> None:
    from typer.testing import CliRunner

    from roomrender.cli import app as cli_app

    result = CliRunner().invoke(cli_app, ["models", "check", "flux_schnell"],
                                env={"ROOMRENDER_MODELS_DIR": str(flow_models),
                                     "ROOMRENDER_DIFFUSERS_REGISTRY": str(registry_file)})
    assert result.exit_code == 0, result.output
    assert "33.7 GB in bf16" in result.output and "apache-2.0" in result.output
