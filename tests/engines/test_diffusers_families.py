"""Issue 17 on CPU, tiny random components through the real loading code: the SDXL family
(ControlNet Union) and instruction editing through the worker, the family a job runs in, live
previews, the memory budget, and long prompts with CLIP's real BPE."""

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
pytest.importorskip("compel")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from roomrender.canonical.errors import InvalidRequest, Unsupported  # noqa: E402
from roomrender.canonical.models import GenerationRequest, JobStatus, Task  # noqa: E402
from roomrender.canonical.tasks import TASKS  # noqa: E402
from roomrender.cli import app as cli_app  # noqa: E402
from roomrender.config import Settings  # noqa: E402
from roomrender.engines.base import BatchContext, EngineJob  # noqa: E402
from roomrender.engines.diffusers.engine import DiffusersEngine  # noqa: E402
from roomrender.engines.diffusers.registry import load_registry  # noqa: E402
from roomrender.services import Services, build_services  # noqa: E402
from tests.conftest import make_room_photo  # noqa: E402
from tests.engines.test_diffusers_engine import CASES, HEIGHT, MASK, ROOM, WIDTH, png_uri, product_png  # noqa: E402
from tests.event_streams import Stream  # noqa: E402

NO_CONTEXT = BatchContext(lambda *_: None, lambda _: False)


def new_engine(models_dir: Path, registry_file: Path, **options: Any) -> DiffusersEngine:
    return DiffusersEngine(load_registry(registry_file), models_dir, **options)


@pytest.fixture(scope="module")
def engine(models_dir: Path, registry_file: Path) -> DiffusersEngine:
    return new_engine(models_dir, registry_file)


@pytest.fixture
def dservices(settings: Settings, models_dir: Path, registry_file: Path, engine: DiffusersEngine) -> Iterator[Services]:
    built = build_services(settings.model_copy(update={"engine": "diffusers", "models_dir": models_dir,
                                                       "diffusers_registry": registry_file}), engine=engine)
    yield built
    built.db.dispose()


def owner_of(services: Services) -> Any:
    existing = [key for key in services.keys.list() if key.name == "test"]
    return existing[0] if existing else services.keys.create("test")[0]


def run_all(services: Services) -> Any:
    """The worker, until the queue is empty and its previews are stored."""
    worker = services.new_worker()
    while worker.run_once():
        pass
    worker.previews.wait()
    return worker


def outputs(services: Services, job: Any) -> list[Image.Image]:
    return [Image.open(io.BytesIO(services.storage.get(o.key))) for o in job.outputs]


INSTRUCT = ({"image": ROOM, "prompt": "make the walls sage green"}, (WIDTH, HEIGHT))


# -- the SDXL family and instruct --------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("task", sorted([*CASES, "instruct"]))
def test_every_task_of_the_sdxl_family_renders_through_the_worker(dservices: Services, task: str) -> None:
    fields, size = INSTRUCT if task == "instruct" else CASES[task]
    model = None if task == "instruct" else "sdxl"
    job = dservices.jobs.submit(owner_of(dservices), GenerationRequest(task=task, model=model, n=2, seed=3, **fields))
    assert job.status == JobStatus.queued

    run_all(dservices)
    job = dservices.jobs.get(owner_of(dservices), job.id)
    assert job.status == JobStatus.succeeded, job.error_message
    images = outputs(dservices, job)
    assert [image.size for image in images] == [size, size]
    if task not in ("recolor", "segment"):
        # Each variant has its own seed (a recolor's area is what the tiny segmenter finds: maybe none).
        assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))


@pytest.mark.slow
def test_cutout_and_place_run_in_the_sdxl_family(dservices: Services, engine: DiffusersEngine) -> None:
    room = np.asarray(Image.open(io.BytesIO(make_room_photo(WIDTH, HEIGHT, fmt="PNG"))).convert("RGB"), np.int32)
    placement, area = {"x": 20, "y": 18, "w": 24, "h": 18}, {"x": 12, "y": 10, "w": 42, "h": 34}
    photo = png_uri(Image.fromarray(room.astype(np.uint8)))
    place = GenerationRequest(task="place", model="sdxl", image=photo, product_image=product_png(transparent=True),
                              placement=placement, area=area, n=2, seed=5)
    cutout = GenerationRequest(task="cutout", model="sdxl", image=ROOM)
    # SDXL inpainting + IP-Adapter SDXL; the cutout shares SD 1.5's segmentation and matting models.
    assert engine.spec_for(place).pipeline == "StableDiffusionXLInpaintPipeline"
    assert engine.spec_for(place).ip_adapter == "ip_adapter_sdxl"
    assert engine.spec_for(cutout).family == "sdxl"
    sd15_cutout = cutout.model_copy(update={"model": "sd15"})
    assert engine.spec_for(cutout).model_keys() == engine.spec_for(sd15_cutout).model_keys()
    owner = owner_of(dservices)
    jobs = [dservices.jobs.submit(owner, request) for request in (place, cutout)]

    run_all(dservices)
    placed, cut = (dservices.jobs.get(owner, job.id) for job in jobs)
    assert placed.status == JobStatus.succeeded, placed.error_message
    assert cut.status == JobStatus.succeeded, cut.error_message
    inside = np.zeros((HEIGHT, WIDTH), dtype=bool)
    inside[10:44, 12:54] = True
    images = [np.asarray(image.convert("RGB"), np.int32) for image in outputs(dservices, placed)]
    for out in images:
        assert out.shape == room.shape
        assert np.array_equal(out[~inside], room[~inside])  # nothing outside `area` changes
    assert not np.array_equal(images[0][inside], images[1][inside])
    [alpha] = outputs(dservices, cut)
    assert alpha.mode == "RGBA" and alpha.size == (WIDTH, HEIGHT)


def test_the_family_a_job_runs_in(engine: DiffusersEngine, models_dir: Path, registry_file: Path) -> None:
    restyle = GenerationRequest(task="restyle", image="x")
    assert engine.spec_for(restyle).pipeline == "StableDiffusionControlNetInpaintPipeline"
    sdxl = restyle.model_copy(update={"model": "sdxl"})
    assert engine.spec_for(sdxl).pipeline == "StableDiffusionXLControlNetUnionInpaintPipeline"
    assert engine.spec_for(sdxl).resolution == 64  # the test registry's; 1024 in the packaged one
    assert load_registry().family("sdxl").resolution == 1024
    # SDXL has no instruction model: a job naming it is refused; one naming none runs on SD 1.5.
    with pytest.raises(Unsupported, match="no pipeline for the task 'instruct'"):
        engine.validate(GenerationRequest(task="instruct", image="x", prompt="p", model="sdxl"))
    assert engine.spec_for(GenerationRequest(task="instruct", image="x", prompt="p")).family == "sd15"
    with pytest.raises(InvalidRequest, match="unknown model 'flux'"):
        engine.validate(restyle.model_copy(update={"model": "flux"}))

    # A server whose default family is SDXL: vendor dialects' jobs (no model) run there.
    server = new_engine(models_dir, registry_file, family="sdxl")
    assert server.spec_for(restyle).family == "sdxl"
    # Every task whose definition names the diffusers engine.
    assert server.supported_tasks() == frozenset(
        task for task, definition in TASKS.items() if "diffusers" in definition.engine_names)
    # Batch keys start with engine and family: `worker --pipelines diffusers:sdxl` takes SDXL jobs.
    assert server.batch_key(restyle, 64, 48).startswith("diffusers:sdxl:restyle:")
    assert engine.batch_key(restyle, 64, 48).startswith("diffusers:sd15:restyle:")


def test_the_native_model_field_and_its_errors(client_for: Any) -> None:
    client, headers = client_for
    accepted = client.post("/v1/jobs", json={"task": "restyle", "image": ROOM, "model": "sdxl"}, headers=headers)
    assert accepted.status_code == 202, accepted.text
    unknown = client.post("/v1/jobs", json={"task": "restyle", "image": ROOM, "model": "flux"}, headers=headers)
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_model"
    refused = client.post("/v1/jobs", json={"task": "instruct", "image": ROOM, "prompt": "p", "model": "sdxl"},
                          headers=headers)
    assert refused.status_code in (400, 422, 501) and "instruct" in refused.json()["error"]["message"]
    missing = client.post("/v1/jobs", json={"task": "instruct", "image": ROOM}, headers=headers)
    assert missing.status_code == 400 and "prompt" in missing.json()["error"]["message"]


@pytest.fixture
def client_for(dservices: Services) -> Iterator[tuple[Any, dict[str, str]]]:
    from fastapi.testclient import TestClient

    from roomrender.app import create_app

    _key, plaintext = dservices.keys.create("http")
    app = create_app(dservices.settings, services=dservices, workers=0, janitor=False)
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {plaintext}"}


# -- live previews -----------------------------------------------------------------------------

def test_previews_arrive_during_the_run_and_decode(engine: DiffusersEngine) -> None:
    seen: list[tuple[str, Image.Image, float]] = []
    progress: dict[str, float] = {}
    context = BatchContext(lambda job_id, fraction: progress.__setitem__(job_id, fraction), lambda _: False,
                           lambda job_id, image: seen.append((job_id, image, progress.get(job_id, 0.0))))
    jobs = [EngineJob("a", GenerationRequest(task="text_to_image", prompt="a hall", steps=4, n=2, seed=1)),
            EngineJob("b", GenerationRequest(task="text_to_image", prompt="a hall", steps=4, n=1, seed=2))]

    results = engine.generate(jobs, context)
    assert all(isinstance(r, list) for r in results)
    # Every step but the last (the test registry previews every step), for each job, mid-run.
    assert sorted(job_id for job_id, _, _ in seen) == ["a", "a", "a", "b", "b", "b"]
    assert all(0 < fraction < 1 for _, _, fraction in seen)
    for _, image, _ in seen:
        assert image.mode == "RGB" and max(image.size) <= 256
        assert np.asarray(image).std() > 0


@pytest.mark.slow
def test_the_worker_stores_previews_and_the_job_and_its_events_show_them(
        dservices: Services, client_for: Any) -> None:
    client, headers = client_for
    events: list[tuple[str, Any]] = []
    dservices.queue.add_hook(lambda _c, row, event: events.append((event, row.preview_key))
                             if event == "job.preview" else None)
    created = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "a loft", "steps": 4, "model": "sdxl"},
                          headers=headers)
    job_id = created.json()["id"]
    assert created.json()["preview"] is None

    shown: list[str] = []
    real_set_preview = dservices.queue.set_preview

    def set_preview_and_look(token: str, job: str, key: str) -> str | None:
        replaced = real_set_preview(token, job, key)
        # While it runs, the native job shows the preview's URL, and the URL serves a JPEG.
        body = client.get(f"/v1/jobs/{job}", headers=headers).json()
        shown.append(body["preview"])
        return replaced

    dservices.queue.set_preview = set_preview_and_look  # type: ignore[method-assign]
    run_all(dservices)

    assert [event for event, _ in events] == ["job.preview"] * 3
    assert len(shown) == 3 and all(url and url.startswith("http://testserver/files/pre-") for url in shown)
    last = client.get(shown[-1].removeprefix("http://testserver"))
    assert last.status_code == 200 and last.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(last.content)).size == (256, 256)
    # The replaced previews are gone; the finished job shows none.
    assert client.get(shown[0].removeprefix("http://testserver")).status_code == 404
    finished = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
    assert finished["status"] == "succeeded" and finished["preview"] is None


def test_the_event_stream_sends_a_preview_event(dservices: Services, client_for: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    client, headers = client_for
    job_id = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "a den"}, headers=headers).json()["id"]
    # A worker has claimed the job and stored a preview of it (as the engine's callback does).
    claim = dservices.queue.claim("w", "diffusers")
    assert claim is not None
    tracker = type("Tracker", (), {"claim": claim, "owner_of": lambda self, _job: claim.rows[0].owner_id})()
    dservices.new_worker()._store_preview(tracker, job_id, Image.new("RGB", (32, 32), (200, 10, 10)))

    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        stream = Stream(response)
        events = [stream.next(), stream.next()]
    assert [event for event, _ in events] == ["status", "preview"]
    data = events[1][1]
    assert data["id"] == job_id
    image = client.get(data["url"].removeprefix("http://testserver"))
    assert image.headers["content-type"] == "image/jpeg"
    assert np.asarray(Image.open(io.BytesIO(image.content)))[16, 16, 0] > 150
    dservices.queue.cancel_running(job_id, claim.token)


# -- the memory budget -------------------------------------------------------------------------

@pytest.mark.slow
def test_a_worker_serving_every_task_stays_inside_a_small_memory_budget(
        settings: Settings, models_dir: Path, registry_file: Path) -> None:
    # What each task needs loaded, measured without a budget.
    free = new_engine(models_dir, registry_file)
    every = [(family, task) for family in ("sd15", "sdxl") for task in [*CASES, "instruct"]
             if not (family == "sdxl" and task == "instruct")]
    needs = {}
    for family, task in every:
        free.store.parts.begin_batch()
        request = request_for(task, family)
        free.generate([EngineJob("m", request, inputs_for(request))], NO_CONTEXT)
        needs[(family, task)] = sum(free.store.parts._bytes[k] for k in free.store.parts._batch
                                    if k in free.store.parts)
    everything = free.store.parts.resident_bytes
    budget = int(max(needs.values()) * 1.1)
    assert budget < everything / 2, (budget, everything)

    engine = new_engine(models_dir, registry_file, memory_budget_bytes=budget)
    services = build_services(settings.model_copy(update={"engine": "diffusers", "models_dir": models_dir,
                                                          "diffusers_registry": registry_file}), engine=engine)
    owner = owner_of(services)
    peak = 0
    for _round in range(2):
        for family, task in every:
            job = services.jobs.submit(owner, request_for(task, family, refs=True))
            run_all(services)
            assert services.jobs.get(owner, job.id).status == JobStatus.succeeded, (family, task)
            peak = max(peak, engine.store.parts.resident_bytes)
    services.db.dispose()

    assert peak <= budget
    assert engine.store.parts.evictions > 0
    # What was unloaded was loaded again when a task needed it.
    assert max(engine.store.parts.loads.values()) >= 2


def request_for(task: str, family: str, refs: bool = False) -> GenerationRequest:
    fields, _size = INSTRUCT if task == "instruct" else CASES[task]
    if not refs:
        fields = {name: ("x" if isinstance(value, str) and value.startswith("data:") else value)
                  for name, value in fields.items()}
    return GenerationRequest(task=task, model=None if task == "instruct" else family, seed=1, **fields)


def inputs_for(request: GenerationRequest) -> dict[str, Image.Image]:
    room = Image.open(io.BytesIO(make_room_photo(WIDTH, HEIGHT)))
    return {} if request.task == Task.text_to_image else {"image": room, "mask": MASK, "reference_image": room}


# -- long prompts, with CLIP's real BPE --------------------------------------------------------

LONG_PROMPT = (
    "a photo of a scandinavian living room with a light oak floor, white walls and a large window facing a "
    "snowy forest, a low grey linen sofa with wool throws, a round walnut coffee table, a sheepskin rug, "
    "paper pendant lamps, a tall fiddle leaf fig in a ceramic pot, built-in bookshelves full of design books, "
    "a reading nook with a cane armchair, brass details, soft morning light, muted sage and sand accents, "
    "linen curtains, a wood-burning stove in the corner, a stack of firewood, candles on the windowsill, "
    "framed botanical prints above the sofa, a woven basket with blankets, a sideboard in smoked oak holding "
    "a record player and a row of vinyl records, a pair of ceramic vases with dried grasses, a terrazzo side "
    "table, a floor lamp with a linen shade, a jute runner by the window, a small writing desk with a green "
    "banker's lamp, a mirror with a thin brass frame, and finally at the very end of this "
    "long description a bright red vintage bicycle leaning against the wall"
)


@pytest.fixture(scope="module")
def clip_tokenizer(models_dir: Path) -> Any:
    from transformers import CLIPTokenizer

    from roomrender.engines.diffusers.random_models import clip_bpe_file

    if clip_bpe_file() is None:
        pytest.skip("open_clip (CLIP's BPE vocabulary) is not installed")
    return CLIPTokenizer.from_pretrained(models_dir / "stable-diffusion-v1-5/stable-diffusion-v1-5/tokenizer")


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_a_200_token_prompt_reaches_the_text_encoder_whole(
        engine: DiffusersEngine, clip_tokenizer: Any, family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from roomrender.engines.diffusers.conditioning import chunk_count, prompt_embeddings, token_count

    assert len(clip_tokenizer) == 49408
    tokens = clip_tokenizer(LONG_PROMPT, add_special_tokens=False)["input_ids"]
    assert 190 <= len(tokens) <= 225 and token_count(clip_tokenizer, LONG_PROMPT) == len(tokens)
    pipeline = engine.store.pipeline(engine.spec_for(GenerationRequest(task="text_to_image", prompt="x",
                                                                       model=family)))
    seen: list[torch.Tensor] = []
    encoder = pipeline.text_encoder
    real_forward = encoder.forward
    monkeypatch.setattr(encoder, "forward", lambda input_ids, *a, **k: seen.append(input_ids) or real_forward(
        input_ids, *a, **k))

    # Every token of the prompt goes through the text encoder, in 77-token chunks.
    embeds = prompt_embeddings(pipeline, [LONG_PROMPT], ["blurry"])
    fed = [int(t) for ids in seen for t in ids.flatten() if int(t) not in (49406, 49407)]
    assert fed[: len(tokens)] == tokens
    length = embeds["prompt_embeds"].shape[1]
    assert length >= 77 * 3 and length % 77 == 0 and length == embeds["negative_prompt_embeds"].shape[1]
    assert length == 77 * chunk_count(pipeline.tokenizer, [LONG_PROMPT])

    # The tail (past token 77, and past 154) changes the embedding...
    changed = LONG_PROMPT.replace("bright red vintage bicycle", "black grand piano")
    other = prompt_embeddings(pipeline, [changed], ["blurry"])["prompt_embeds"]
    assert not torch.allclose(embeds["prompt_embeds"], other)
    assert torch.allclose(embeds["prompt_embeds"][:, :77], other[:, :77])
    # ...where the pipeline's own encoder, given the text, would have dropped it.
    truncated = clip_tokenizer(LONG_PROMPT, truncation=True, max_length=77)["input_ids"]
    assert len(truncated) == 77 and truncated[-2] != tokens[-1]
    if family == "sdxl":
        assert embeds["pooled_prompt_embeds"].shape[0] == 1


def test_long_prompts_batch_only_with_prompts_of_their_length(engine: DiffusersEngine, clip_tokenizer: Any) -> None:
    short = GenerationRequest(task="text_to_image", prompt="a hall")
    long = GenerationRequest(task="text_to_image", prompt=LONG_PROMPT)
    assert engine.batch_key(short, None, None) != engine.batch_key(long, None, None)
    assert "chunks=1" in engine.batch_key(short, None, None)
    assert "chunks=3" in engine.batch_key(long, None, None) or "chunks=4" in engine.batch_key(long, None, None)
    assert isinstance(engine.generate([EngineJob("l", long)], NO_CONTEXT)[0], list)


def test_our_own_templates_stay_under_77_clip_tokens(clip_tokenizer: Any) -> None:
    from roomrender.catalog import room_types, styles
    from roomrender.engines.diffusers.conditioning import token_count
    from roomrender.engines.diffusers.prompts import build_prompt

    longest = 0
    for task in Task:
        for style in [None, *styles()]:
            for room in [None, *room_types()]:
                request = GenerationRequest.model_construct(
                    **{**GenerationRequest(task="restyle").model_dump(), "task": task, "style": style,
                       "room_type": room, "color": "#A3B18A", "area": "wall"})
                prompt = build_prompt(request)
                longest = max(longest, token_count(clip_tokenizer, prompt.positive))
                assert token_count(clip_tokenizer, prompt.negative) <= 75
    # 75 tokens fit between CLIP's start and end markers.
    assert 0 < longest <= 75, longest


# -- models check: licences ---------------------------------------------------------------------

def test_models_check_shows_licences_and_flags_non_commercial_ones(
        models_dir: Path, registry_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = json.loads(registry_file.read_text())
    data["models"]["controlnet_seg"]["licence"] = "CC-BY-NC-4.0"
    edited = tmp_path / "registry.json"
    edited.write_text(json.dumps(data))
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_REGISTRY", str(edited))
    monkeypatch.setenv("COLUMNS", "300")

    result = CliRunner().invoke(cli_app, ["models", "check", "all", "--models-dir", str(models_dir)])
    assert result.exit_code == 0, result.output
    assert "creativeml-openrail-m" in result.output and "apache-2.0" in result.output
    assert "CC-BY-NC-4.0 NON-COMMERCIAL" in result.output
    assert "non-commercial licences: lllyasviel/control_v11p_sd15_seg may not be used commercially" in result.output
    assert "sdxl:restyle" in result.output and "sd15:instruct" in result.output
