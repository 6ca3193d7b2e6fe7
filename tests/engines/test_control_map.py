"""The control map a request asks to get back (`control_map`), and the Replicate model built on it
(jagilley/controlnet-hough: the detected line map first, then the images), on the diffusers
engine with tiny random checkpoints."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from fastapi.testclient import TestClient
from PIL import Image

from roomrender.app import create_app
from roomrender.canonical.models import GenerationRequest, JobStatus
from roomrender.config import Settings
from roomrender.engines import load_engine
from roomrender.engines.diffusers.plan import fit
from roomrender.engines.diffusers.preprocessors import straight_lines
from roomrender.services import Services, build_services
from tests.conftest import BASE_URL, data_uri, drain, make_room_photo
from tests.servers import free_port, run_uvicorn

HOUGH_VERSION = "854e8727697a057c525cdb45ab037f64ecca770a1769cc52287c2e56472a247b"
WIDTH, HEIGHT = 96, 72


@pytest.fixture(scope="module")
def engine(models_dir: Path, registry_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_engine(Settings(data_dir=tmp_path_factory.mktemp("unused"), engine="diffusers",
                                models_dir=models_dir, diffusers_registry=registry_file))


@pytest.fixture
def dservices(settings: Settings, models_dir: Path, registry_file: Path, engine: Any) -> Iterator[Services]:
    built = build_services(settings.model_copy(update={
        "engine": "diffusers", "models_dir": models_dir, "diffusers_registry": registry_file}), engine=engine)
    yield built
    built.db.dispose()


def expected_lines(photo: Image.Image, resolution: int) -> np.ndarray:
    """What the engine's lines preprocessor sees (the working image), at the output size."""
    work = photo.convert("RGB").resize(fit(*photo.size, resolution), Image.Resampling.LANCZOS)
    return np.asarray(straight_lines(work).resize(photo.size, Image.Resampling.BILINEAR).convert("RGB"))


@pytest.mark.slow
def test_a_restyle_asked_for_its_line_map_returns_it_first(dservices: Services, engine: Any) -> None:
    photo = make_room_photo(WIDTH, HEIGHT)
    owner = dservices.keys.create("t")[0]
    job = dservices.jobs.submit(owner, GenerationRequest(task="restyle", image=data_uri(photo), n=2, seed=1,
                                                         control_map="lines"))
    drain(dservices)
    done = dservices.jobs.get(owner, job.id)
    assert done.status == JobStatus.succeeded, done.error_message
    assert [o.label for o in done.outputs] == ["lines", None, None]
    assert done.outputs[0].content_type == "image/png"
    lines = np.asarray(Image.open(io.BytesIO(dservices.storage.get(done.outputs[0].key))).convert("RGB"))
    expected = expected_lines(Image.open(io.BytesIO(photo)), engine.registry.resolution)
    assert (expected > 0).any(), "the room photo has straight edges to find"
    assert np.array_equal(lines, expected)


@pytest.mark.slow
def test_controlnet_hough_answers_the_line_map_then_the_images(dservices: Services, engine: Any) -> None:
    photo = make_room_photo(WIDTH, HEIGHT)
    app = create_app(dservices.settings, services=dservices, workers=0, janitor=False)
    auth = {"Authorization": f"Bearer {dservices.keys.create('roomgpt')[1]}"}
    with TestClient(app, base_url=BASE_URL) as client:
        # What roomGPT sends.
        created = client.post("/v1/predictions", headers=auth, json={"version": HOUGH_VERSION, "input": {
            "image": data_uri(photo), "prompt": "a modern living room",
            "a_prompt": "best quality, extremely detailed, photo from Pinterest, interior",
            "n_prompt": "longbody, lowres, bad anatomy", "num_samples": "1", "image_resolution": "512",
            "detect_resolution": 512, "value_threshold": 0.1}})
        assert created.status_code == 201, created.text
        job = dservices.jobs.get(dservices.keys.authenticate(auth["Authorization"][7:]), created.json()["id"])
        request = job.request
        assert (request.task.value, request.keep_structure, request.control_map, request.n) == (
            "restyle", True, "lines", 1)
        assert request.prompt == ("a modern living room, best quality, extremely detailed, photo from "
                                  "Pinterest, interior")
        assert request.negative_prompt == "longbody, lowres, bad anatomy" and request.steps == 20
        drain(dservices)
        done = client.get(created.json()["urls"]["get"], headers=auth).json()
        assert done["status"] == "succeeded", done
        assert isinstance(done["output"], list) and len(done["output"]) == 2
        images = [Image.open(io.BytesIO(client.get(url).content)).convert("RGB") for url in done["output"]]
    assert [image.size for image in images] == [(WIDTH, HEIGHT)] * 2
    assert np.array_equal(np.asarray(images[0]),
                          expected_lines(Image.open(io.BytesIO(photo)), engine.registry.resolution))
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))
    # The inputs roomrender accepts without using them are named in the logs.
    assert "image_resolution: accepted, not used" in done["logs"]
    assert "value_threshold: accepted, not used" in done["logs"]


@pytest.mark.slow
def test_the_official_client_runs_controlnet_hough_to_a_list(settings: Settings, models_dir: Path,
                                                            registry_file: Path, engine: Any) -> None:
    replicate = pytest.importorskip("replicate")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    live = settings.model_copy(update={"engine": "diffusers", "models_dir": models_dir,
                                       "diffusers_registry": registry_file, "public_base_url": base_url})
    built = build_services(live, engine=engine)
    app = create_app(live, services=built, workers=1, janitor=False)
    try:
        with run_uvicorn(app, port):
            client = replicate.Client(api_token=built.keys.create("roomgpt")[1], base_url=base_url)
            photo = make_room_photo(WIDTH, HEIGHT)
            output = client.run(f"jagilley/controlnet-hough:{HOUGH_VERSION}", input={
                "image": data_uri(photo), "prompt": "a cosy bedroom", "num_samples": "4"})
            images = [Image.open(io.BytesIO(client._client.get(str(url)).content)) for url in output]
    finally:
        built.db.dispose()
    assert len(images) == 5 and all(image.size == (WIDTH, HEIGHT) for image in images)
    assert np.array_equal(np.asarray(images[0].convert("RGB")),
                          expected_lines(Image.open(io.BytesIO(photo)), engine.registry.resolution))
