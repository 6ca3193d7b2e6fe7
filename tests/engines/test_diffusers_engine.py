"""The diffusers engine, end to end on CPU: tiny random checkpoints written to a models folder,
loaded by the real loading code, every task run through the real worker."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from roomrender import worker as worker_module  # noqa: E402
from roomrender.canonical.errors import Unsupported  # noqa: E402
from roomrender.canonical.models import GenerationRequest, JobStatus, Task  # noqa: E402
from roomrender.canonical.tasks import TASKS  # noqa: E402
from roomrender.cli import app as cli_app  # noqa: E402
from roomrender.config import Settings  # noqa: E402
from roomrender.engines import load_engine  # noqa: E402
from roomrender.engines.base import BatchCanceled, BatchContext, EngineJob  # noqa: E402
from roomrender.engines.diffusers.preprocessors import (  # noqa: E402
    ADE_ID,
    mask_area,
    mask_furniture,
    mask_sparing_openings,
    straight_lines,
    without_furniture,
)
from roomrender.engines.diffusers.prompts import build_prompt, color_name  # noqa: E402
from roomrender.services import Services, build_services  # noqa: E402
from tests.conftest import data_uri, drain, make_room_photo  # noqa: E402

WIDTH, HEIGHT = 64, 48
SEG_CONTROLNET = "lllyasviel/control_v11p_sd15_seg"


def engine_settings(base: Settings, models_dir: Path, registry_file: Path) -> Settings:
    return base.model_copy(update={"engine": "diffusers", "models_dir": models_dir,
                                   "diffusers_registry": registry_file})


@pytest.fixture(scope="session")
def engine(models_dir: Path, registry_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = Settings(data_dir=tmp_path_factory.mktemp("unused"), engine="diffusers",
                        models_dir=models_dir, diffusers_registry=registry_file)
    return load_engine(settings)


@pytest.fixture
def dservices(settings: Settings, models_dir: Path, registry_file: Path, engine: Any) -> Iterator[Services]:
    # The loaded engine is shared across tests: loading checkpoints once is what a worker does.
    built = build_services(engine_settings(settings, models_dir, registry_file), engine=engine)
    yield built
    built.db.dispose()


def png_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return data_uri(buffer.getvalue(), "image/png")


ROOM = data_uri(make_room_photo(WIDTH, HEIGHT))
MASK = Image.new("L", (WIDTH, HEIGHT), 0)
MASK.paste(255, (8, 8, 32, 40))

# task → (request fields, expected output size)
CASES: dict[str, tuple[dict[str, Any], tuple[int, int]]] = {
    "restyle": ({"image": ROOM, "style": "scandinavian", "room_type": "living_room", "strength": 0.8},
                (WIDTH, HEIGHT)),
    "empty_room": ({"image": ROOM}, (WIDTH, HEIGHT)),
    "stage": ({"image": ROOM, "style": "modern", "room_type": "bedroom"}, (WIDTH, HEIGHT)),
    "sketch_render": ({"image": ROOM, "style": "industrial_loft"}, (WIDTH, HEIGHT)),
    "style_transfer": ({"image": ROOM, "reference_image": data_uri(make_room_photo(40, 40))},
                       (WIDTH, HEIGHT)),
    "edit": ({"image": ROOM, "mask": png_uri(MASK), "prompt": "a green velvet armchair"},
             (WIDTH, HEIGHT)),
    "recolor": ({"image": ROOM, "color": "#A3B18A", "area": "wall"}, (WIDTH, HEIGHT)),
    "upscale": ({"image": ROOM, "scale": 2}, (WIDTH * 2, HEIGHT * 2)),
    "expand": ({"image": ROOM, "expand": {"left": 0.25, "right": 0.25, "top": 0, "bottom": 0}},
               (WIDTH * 3 // 2, HEIGHT)),
    "text_to_image": ({"prompt": "a bright kitchen", "width": 96, "height": 64}, (96, 64)),
}


def owner_of(services: Services) -> Any:
    existing = [key for key in services.keys.list() if key.name == "test"]
    return existing[0] if existing else services.keys.create("test")[0]


def submit(services: Services, **fields: Any) -> str:
    return services.jobs.submit(owner_of(services), GenerationRequest(**fields)).id


def finished(services: Services, job_id: str) -> Any:
    return services.jobs.get(owner_of(services), job_id)


def output_images(services: Services, job: Any) -> list[Image.Image]:
    return [Image.open(io.BytesIO(services.storage.get(o.key))) for o in job.outputs]


@pytest.mark.parametrize("task", sorted(CASES))
def test_every_task_renders_the_asked_size_and_count(dservices: Services, task: str) -> None:
    fields, size = CASES[task]
    job_id = submit(dservices, task=task, n=2, seed=3, **fields)

    assert drain(dservices) == 1
    job = finished(dservices, job_id)
    assert job.status == JobStatus.succeeded, job.error_message
    assert len(job.outputs) == 2
    images = output_images(dservices, job)
    assert [image.size for image in images] == [size, size]
    assert all(image.mode == "RGB" for image in images)


def test_segment_returns_labelled_masks_at_the_image_size(dservices: Services) -> None:
    job_id = submit(dservices, task="segment", image=ROOM)

    drain(dservices)
    job = finished(dservices, job_id)
    assert job.status == JobStatus.succeeded, job.error_message
    assert job.outputs and all(o.label for o in job.outputs)
    masks = output_images(dservices, job)
    assert all(m.size == (WIDTH, HEIGHT) and m.mode == "L" for m in masks)
    # The masks partition the image (the smallest segments aside).
    covered = sum((np.asarray(m) > 0).sum() for m in masks)
    assert covered >= 0.9 * WIDTH * HEIGHT


def test_the_engine_is_chosen_by_settings(settings: Settings, models_dir: Path, registry_file: Path) -> None:
    services = build_services(engine_settings(settings, models_dir, registry_file))
    assert services.engine.name == "diffusers"
    # Every task whose definition names the diffusers engine.
    assert services.engine.supported_tasks() == frozenset(
        task for task, definition in TASKS.items() if "diffusers" in definition.engine_names)
    services.db.dispose()


def test_same_seed_same_image_and_another_seed_another(dservices: Services) -> None:
    ids = []
    for seed in (42, 42, 43):
        ids.append(submit(dservices, task="text_to_image", prompt="a loft", seed=seed))
        drain(dservices)

    pixels = [np.asarray(output_images(dservices, finished(dservices, j))[0]).astype(int) for j in ids]
    assert np.array_equal(pixels[0], pixels[1])
    assert np.abs(pixels[0] - pixels[2]).mean() > 5


def test_compatible_jobs_share_one_batch_and_variants_differ(dservices: Services) -> None:
    ids = [submit(dservices, task="restyle", image=ROOM, style="bohemian", n=2, seed=s) for s in (1, 9)]

    assert drain(dservices) == 1
    outputs = [output_images(dservices, finished(dservices, j)) for j in ids]
    assert all(len(images) == 2 for images in outputs)
    first_job = [np.asarray(i) for i in outputs[0]]
    assert not np.array_equal(first_job[0], first_job[1])


@pytest.mark.parametrize("fields", [{"task": "text_to_image", "prompt": "a hall"},
                                    {"task": "upscale", "image": ROOM, "scale": 2}],
                         ids=["text_to_image", "upscale"])
def test_progress_moves_with_every_denoising_step(dservices: Services, monkeypatch: pytest.MonkeyPatch,
                                                  fields: dict[str, Any]) -> None:
    monkeypatch.setattr(worker_module, "PROGRESS_WRITE_SECONDS", 0.0)
    seen: list[float] = []
    dservices.queue.add_hook(lambda _c, row, event: seen.append(row.progress) if event == "job.progress" else None)
    job_id = submit(dservices, steps=4, **fields)

    drain(dservices)
    assert finished(dservices, job_id).status == JobStatus.succeeded
    assert len(seen) >= 4
    assert seen == sorted(seen) and 0 < seen[0] < seen[-1] <= 1


def test_cancellation_is_checked_at_every_step(engine: Any) -> None:
    steps: list[float] = []
    context = BatchContext(lambda _job, fraction: steps.append(fraction), lambda _job: True)
    job = EngineJob("j", GenerationRequest(task="text_to_image", prompt="a study", steps=5))

    with pytest.raises(BatchCanceled):
        engine.generate([job], context)
    assert len(steps) == 1


def test_out_of_memory_fails_the_batch_clearly_and_the_worker_goes_on(
        dservices: Services, engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real_pipeline = engine.store.pipeline
    calls = {"n": 0}

    class RunsOutOfMemory:
        """The real pipeline (its text encoders are used), but the call runs out of memory."""

        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def __call__(self, **_kwargs: Any) -> Any:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def pipeline_that_runs_out_once(spec: Any, fast: bool = False) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            return RunsOutOfMemory(real_pipeline(spec, fast))
        return real_pipeline(spec, fast)

    monkeypatch.setattr(engine.store, "pipeline", pipeline_that_runs_out_once)
    failing = submit(dservices, task="text_to_image", prompt="a garage", n=3)
    drain(dservices)
    following = submit(dservices, task="text_to_image", prompt="a garage")
    drain(dservices)

    failed = finished(dservices, failing)
    assert failed.status == JobStatus.failed
    assert failed.error_code == "out_of_memory"
    assert "ran out of memory" in (failed.error_message or "")
    assert finished(dservices, following).status == JobStatus.succeeded


def test_segmentation_runs_once_per_image_and_batched(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_segment = engine.pre._segment
    monkeypatch.setattr(engine.pre, "_segment", lambda images: calls.append(len(images)) or real_segment(images))
    photos = [Image.open(io.BytesIO(make_room_photo(WIDTH, HEIGHT))),
              Image.open(io.BytesIO(make_room_photo(WIDTH, HEIGHT, fmt="PNG")))]
    jobs = [EngineJob(f"j{i}", GenerationRequest(task="restyle", image="x", style="modern"), {"image": photo})
            for i, photo in enumerate(photos + photos[:1])]

    results = engine.generate(jobs, BatchContext(lambda *_: None, lambda _: False))
    assert all(isinstance(r, list) and len(r) == 1 for r in results)
    # The mask and the segmentation control of three jobs on two distinct images: one model call.
    assert calls == [2]


def test_attention_runs_through_sdpa(engine: Any) -> None:
    from diffusers.models.attention_processor import AttnProcessor2_0

    pipeline = engine.store.pipeline(engine.registry.task(Task.text_to_image))
    assert all(isinstance(p, AttnProcessor2_0) for p in pipeline.unet.attn_processors.values())


# -- missing weights ------------------------------------------------------------------------


@pytest.fixture
def models_without_seg_controlnet(models_dir: Path, tmp_path: Path) -> Path:
    """The test models folder with one checkpoint removed (the others linked in)."""
    partial = tmp_path / "partial-models"
    for owner in models_dir.iterdir():
        for model in owner.iterdir():
            if f"{owner.name}/{model.name}" != SEG_CONTROLNET:
                (partial / owner.name).mkdir(parents=True, exist_ok=True)
                (partial / owner.name / model.name).symlink_to(model)
    return partial


def test_a_task_whose_weights_are_missing_is_refused_at_submit(
        settings: Settings, models_without_seg_controlnet: Path, registry_file: Path,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    services = build_services(engine_settings(settings, models_without_seg_controlnet, registry_file))
    owner, _ = services.keys.create("test")

    with pytest.raises(Unsupported) as refused:
        services.jobs.submit(owner, GenerationRequest(task="restyle", image=ROOM, style="modern"))
    assert refused.value.code == "models_missing"
    assert SEG_CONTROLNET in refused.value.message
    # Tasks that do not need it are still served.
    services.jobs.submit(owner, GenerationRequest(task="edit", image=ROOM, mask=png_uri(MASK), remove=True))
    services.db.dispose()


def test_models_check_lists_a_removed_checkpoint_as_missing(
        models_without_seg_controlnet: Path, registry_file: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_REGISTRY", str(registry_file))
    monkeypatch.setenv("COLUMNS", "250")

    result = CliRunner().invoke(cli_app, ["models", "check", "--models-dir", str(models_without_seg_controlnet)])
    assert result.exit_code == 1
    assert f"hf download {SEG_CONTROLNET}" in result.output
    assert "missing" in result.output
    ready_line = next(line for line in result.output.splitlines() if line.startswith("ready:"))
    assert "restyle" not in ready_line and "text_to_image" in ready_line


def test_models_check_passes_when_everything_is_there(models_dir: Path, registry_file: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_REGISTRY", str(registry_file))
    monkeypatch.setenv("COLUMNS", "250")
    result = CliRunner().invoke(cli_app, ["models", "check", "--models-dir", str(models_dir)])
    assert result.exit_code == 0, result.output
    assert "missing:" not in result.output
    assert "latent-consistency/lcm-lora-sdv1-5" in result.output


def test_weights_are_also_found_in_the_hugging_face_cache(models_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from roomrender.engines.diffusers.loading import locate
    from roomrender.engines.diffusers.registry import load_registry

    spec = load_registry().models["controlnet_seg"]
    snapshot = tmp_path / "hub" / "models--lllyasviel--control_v11p_sd15_seg" / "snapshots" / "abc123"
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(models_dir / SEG_CONTROLNET)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))

    found = locate(spec, tmp_path / "empty-models-dir")
    assert found.present and found.path == snapshot


def test_an_operator_swaps_a_checkpoint_in_the_registry_file(
        models_dir: Path, registry_file: Path, tmp_path: Path) -> None:
    from roomrender.engines.diffusers.check import check_models
    from roomrender.engines.diffusers.registry import (
        RegistryError,
        load_registry,
        parse_registry,
    )

    data = json.loads(registry_file.read_text())
    data["models"]["controlnet_seg"]["id"] = "acme/interior-seg-controlnet"
    swapped = tmp_path / "registry.json"
    swapped.write_text(json.dumps(data))
    (models_dir / "acme").mkdir(exist_ok=True)
    if not (models_dir / "acme" / "interior-seg-controlnet").exists():
        (models_dir / "acme" / "interior-seg-controlnet").symlink_to(models_dir / SEG_CONTROLNET)

    report = {entry.task: entry for entry in check_models(load_registry(swapped), models_dir)}
    assert report[Task.restyle].ready
    assert "acme/interior-seg-controlnet" in [p.spec.id for p in report[Task.restyle].models]

    data["tasks"]["restyle"]["pipeline"] = "NoSuchPipeline"
    with pytest.raises(RegistryError, match="pipeline must be one of"):
        parse_registry(data)


# -- the pieces -----------------------------------------------------------------------------


def test_prompts_come_from_style_and_room_templates() -> None:
    prompt = build_prompt(GenerationRequest(task="restyle", image="x", style="scandinavian",
                                            room_type="living_room", prompt="with a fireplace"))
    assert "scandinavian living room" in prompt.positive
    assert "with a fireplace" in prompt.positive
    assert "watermark" in prompt.negative
    assert color_name("#A3B18A") == "sage green"
    exterior = build_prompt(GenerationRequest(task="restyle", image="x", style="modern", exterior=True))
    assert "modern house exterior" in exterior.positive
    recolor = build_prompt(GenerationRequest(task="recolor", image="x", color="#1A2A4A", area="floor"))
    assert "navy blue" in recolor.positive and "floor" in recolor.positive


def test_masks_spare_openings_and_find_furniture() -> None:
    labels = np.full((40, 40), ADE_ID["wall"], dtype=np.int16)
    labels[30:] = ADE_ID["floor"]
    labels[5:15, 5:15] = ADE_ID["windowpane"]
    labels[22:34, 20:35] = ADE_ID["sofa"]

    restyle = np.asarray(mask_sparing_openings(labels))
    assert restyle[10, 10] == 0 and restyle[25, 25] == 255
    furniture = np.asarray(mask_furniture(labels))
    assert furniture[28, 27] == 255 and furniture[10, 10] == 0 and furniture[2, 2] == 0
    assert np.asarray(mask_area(labels, "floor"))[38, 2] == 255
    emptied = without_furniture(labels)
    assert emptied[25, 27] == ADE_ID["floor"] and emptied[10, 10] == ADE_ID["windowpane"]


def test_straight_lines_finds_the_room_edges() -> None:
    photo = Image.open(io.BytesIO(make_room_photo(256, 192)))
    lines = np.asarray(straight_lines(photo).convert("L"))
    assert lines.shape == (192, 256)
    assert 0.002 < (lines > 0).mean() < 0.2


# -- cutout and place -----------------------------------------------------------------------

MATTING = "hustvl/vitmatte-small-composition-1k"


def product_png(transparent: bool) -> str:
    """A red block, on a transparent canvas or on a white studio background."""
    product = Image.new("RGBA" if transparent else "RGB", (40, 30), (0, 0, 0, 0) if transparent else (250, 250, 250))
    product.paste((190, 40, 35, 255) if transparent else (190, 40, 35), (8, 6, 32, 24))
    return png_uri(product)


def test_cutout_runs_segmentation_and_matting_into_a_transparent_png(dservices: Services, engine: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    mattes: list[tuple[int, int]] = []
    real_matte = engine.store.matting

    def counting_matting(key: str) -> Any:
        processor, model = real_matte(key)
        return processor, lambda **inputs: mattes.append(inputs["pixel_values"].shape[-2:]) or model(**inputs)

    monkeypatch.setattr(engine.store, "matting", counting_matting)
    photo = Image.open(io.BytesIO(make_room_photo(WIDTH, HEIGHT, fmt="PNG"))).convert("RGB")
    job_id = submit(dservices, task="cutout", image=png_uri(photo), n=1)

    drain(dservices)
    job = finished(dservices, job_id)
    assert job.status == JobStatus.succeeded, job.error_message
    [cut] = output_images(dservices, job)
    assert cut.mode == "RGBA" and cut.size == (WIDTH, HEIGHT)
    # The subject's pixels are the photo's own; only the alpha is computed.
    assert np.array_equal(np.asarray(cut)[..., :3], np.asarray(photo))
    assert len(mattes) == 1  # the matting model ran (on a trimap from the segmentation)


def test_the_trimap_follows_the_segmented_subject_and_bounds_the_matte() -> None:
    from roomrender.engines.diffusers.matting import SURE, UNKNOWN, subject_mask, trimap

    labels = np.full((40, 40), ADE_ID["wall"], dtype=np.int16)
    labels[30:] = ADE_ID["floor"]
    labels[10:34, 12:30] = ADE_ID["armchair"]
    subject = subject_mask(labels)
    assert subject[20, 20] and not subject[2, 2] and not subject[36, 2]
    tri = trimap(subject, 2)
    assert tri[20, 20] == SURE and tri[2, 2] == 0
    assert tri[10, 20] == UNKNOWN and tri[20, 12] == UNKNOWN and tri[20, 10] == UNKNOWN
    assert (tri[12:32, 14:28] == SURE).all()  # 2 px in from the edge: sure
    far = np.ones(tri.shape, dtype=bool)
    far[7:37, 9:33] = False
    assert (tri[far] == 0).all()  # 3 px out: sure background


def test_place_inpaints_around_the_pasted_product_and_nothing_outside_the_area(dservices: Services) -> None:
    room = np.asarray(Image.open(io.BytesIO(make_room_photo(WIDTH, HEIGHT, fmt="PNG"))).convert("RGB"), np.int32)
    placement, area = {"x": 20, "y": 18, "w": 24, "h": 18}, {"x": 12, "y": 10, "w": 42, "h": 34}
    job_id = submit(dservices, task="place", image=png_uri(Image.fromarray(room.astype(np.uint8))),
                    product_image=product_png(transparent=True), placement=placement, area=area, n=2, seed=5)

    assert drain(dservices) == 1
    job = finished(dservices, job_id)
    assert job.status == JobStatus.succeeded, job.error_message
    images = [np.asarray(image.convert("RGB"), np.int32) for image in output_images(dservices, job)]
    inside = np.zeros((HEIGHT, WIDTH), dtype=bool)
    inside[10:44, 12:54] = True
    for out in images:
        assert out.shape == room.shape
        assert np.array_equal(out[~inside], room[~inside])
        # The product's core is the pasted product, untouched by the model.
        assert np.abs(out[23:30, 25:39] - (190, 40, 35)).max() <= 2
    # The ring around it was repainted, differently per seed.
    assert not np.array_equal(images[0][inside], images[1][inside])


def test_place_at_true_size_lays_a_rug_on_the_floor_and_blends_around_it(dservices: Services) -> None:
    from tests.synthetic_rooms import Camera, StraightRoom

    room = StraightRoom(Camera(width=128, height=96))
    floor = room.floor_point
    corners = [floor(1.0, 0.3), floor(2.6, 0.3), floor(2.6, 2.6), floor(1.0, 2.6)]
    true_size = {"reference_line": [{"x": x, "y": y} for x, y in (floor(0.2, 0.0), floor(3.4, 0.0))],
                 "line_length": 3.2, "width": 1.6, "height": 2.3, "surface": "floor",
                 "at": {"x": corners[0][0], "y": corners[0][1]}}
    photo = np.asarray(room.photo(), np.int32)
    job_id = submit(dservices, task="place", image=png_uri(room.photo()), true_size=true_size,
                    product_image=png_uri(Image.new("RGBA", (32, 46), (190, 40, 35, 255))), seed=3)
    drain(dservices)
    job = finished(dservices, job_id)
    assert job.status == JobStatus.succeeded, job.error_message
    out = np.asarray(output_images(dservices, job)[0].convert("RGB"), np.int32)
    red = (np.abs(out - (190, 40, 35)).max(axis=2) <= 2)
    rows, columns = np.nonzero(red)
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    # The rug's untouched core lies within its quad and fills it but for its blended rim (a few
    # pixels a side, on a rug 32 x 10 pixels here).
    assert min(xs) - 1 <= columns.min() and columns.max() <= max(xs) + 1
    assert min(ys) - 1 <= rows.min() and rows.max() <= max(ys) + 1
    assert columns.max() - columns.min() + 1 >= 0.6 * (max(xs) - min(xs))
    assert rows.max() - rows.min() + 1 >= 0.3 * (max(ys) - min(ys))
    assert red[round(sum(ys) / 4), round(sum(xs) / 4)]
    # Above the horizon (the walls, far from the rug) nothing changed.
    assert np.array_equal(out[:40], photo[:40])


def test_place_cuts_a_product_out_of_its_studio_background(dservices: Services) -> None:
    job_id = submit(dservices, task="place", image=ROOM, product_image=product_png(transparent=False),
                    placement={"x": 16, "y": 16, "w": 32, "h": 24})
    drain(dservices)
    job = finished(dservices, job_id)
    assert job.status == JobStatus.succeeded, job.error_message
    assert output_images(dservices, job)[0].size == (WIDTH, HEIGHT)


def test_models_check_lists_the_matting_weights_of_cutout_and_place(models_dir: Path, registry_file: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    from roomrender.engines.diffusers.check import check_models
    from roomrender.engines.diffusers.registry import load_registry

    report = {entry.task: [p.spec.id for p in entry.models] for entry in check_models(load_registry(), models_dir)}
    assert report[Task.cutout] == ["openmmlab/upernet-convnext-small", MATTING]
    assert {MATTING, "h94/IP-Adapter", "stable-diffusion-v1-5/stable-diffusion-inpainting"} <= set(report[Task.place])

    without = tmp_path / "without-matting"
    for owner in models_dir.iterdir():
        for model in owner.iterdir():
            if f"{owner.name}/{model.name}" != MATTING:
                (without / owner.name).mkdir(parents=True, exist_ok=True)
                (without / owner.name / model.name).symlink_to(model)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_REGISTRY", str(registry_file))
    monkeypatch.setenv("COLUMNS", "250")
    result = CliRunner().invoke(cli_app, ["models", "check", "--models-dir", str(without)])
    assert result.exit_code == 1
    assert f"hf download {MATTING}" in result.output
    ready_line = next(line for line in result.output.splitlines() if line.startswith("ready:"))
    assert "cutout" not in ready_line and "place" not in ready_line and "restyle" in ready_line
