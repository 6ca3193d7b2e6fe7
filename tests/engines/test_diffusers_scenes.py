"""change_background and moodboard on the diffusers engine, with tiny random components: the
product's pixels come back exactly in a new scene; a mood board comes with the room rendered
after it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from roomrender.app import create_app  # noqa: E402
from roomrender.canonical.models import GenerationRequest, JobStatus  # noqa: E402
from roomrender.canonical.tasks import BOARD_SIZE  # noqa: E402
from roomrender.config import Settings  # noqa: E402
from roomrender.engines import load_engine  # noqa: E402
from roomrender.services import Services, build_services  # noqa: E402
from tests.conftest import BASE_URL, data_uri, drain, make_room_photo  # noqa: E402

WIDTH, HEIGHT = 64, 48


@pytest.fixture(scope="module")
def engine(models_dir: Path, registry_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = Settings(data_dir=tmp_path_factory.mktemp("unused"), engine="diffusers",
                        models_dir=models_dir, diffusers_registry=registry_file)
    return load_engine(settings)


@pytest.fixture
def dservices(settings: Settings, models_dir: Path, registry_file: Path, engine: Any) -> Iterator[Services]:
    built = build_services(settings.model_copy(update={
        "engine": "diffusers", "models_dir": models_dir, "diffusers_registry": registry_file}), engine=engine)
    yield built
    built.db.dispose()


def png_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return data_uri(buffer.getvalue(), "image/png")


def run(services: Services, **fields: Any) -> list[np.ndarray]:
    owner = services.keys.create("test")[0]
    job_id = services.jobs.submit(owner, GenerationRequest(**fields)).id
    drain(services)
    job = services.jobs.get(owner, job_id)
    assert job.status == JobStatus.succeeded, job.error_message
    return [np.asarray(Image.open(io.BytesIO(services.storage.get(o.key))).convert("RGB"), np.int32)
            for o in job.outputs]


def product_photo() -> Image.Image:
    """A red block on a transparent canvas (with the tiny random segmentation model, a product
    without its own alpha would be cut out wherever the random labels fall)."""
    photo = Image.new("RGBA", (WIDTH, HEIGHT), (250, 250, 250, 0))
    photo.paste((190, 40, 35, 255), (20, 12, 44, 40))
    return photo


def test_change_background_keeps_the_product_exactly_in_a_new_scene(dservices: Services) -> None:
    photo = np.asarray(product_photo().convert("RGB"), np.int32)
    [out] = run(dservices, task="change_background", image=png_uri(product_photo()),
                prompt="on a marble kitchen counter", seed=4, output_format="png")
    assert out.shape == photo.shape
    product = np.zeros((HEIGHT, WIDTH), dtype=bool)
    product[12:40, 20:44] = True
    # The product's own pixels, exactly; all around it a new scene.
    assert np.array_equal(out[product], photo[product])
    assert (np.abs(out[~product] - photo[~product]).max(axis=1) > 8).mean() > 0.9


def test_luw_changebg_through_generate_and_results(dservices: Services) -> None:
    _, plaintext = dservices.keys.create("luw-client")
    auth = {"Authorization": f"Bearer {plaintext}"}
    app = create_app(dservices.settings, services=dservices, workers=0, janitor=False)
    with TestClient(app, base_url=BASE_URL) as client:
        started = client.post("/v2/generate", headers=auth, json={
            "model": "changebg", "image": png_uri(product_photo()), "prompt": "on a marble counter",
            "format": "png", "seed": 1})
        assert started.status_code == 200, started.text
        drain(dservices)
        answer = client.post("/v2/results", headers=auth,
                             json={"processing_url": started.json()["processing_url"]})
        assert answer.status_code == 200 and answer.json()["status"] is True, answer.text
        output = client.get(answer.json()["output"])
    assert output.status_code == 200 and output.headers["content-type"] == "image/png"
    out = np.asarray(Image.open(io.BytesIO(output.content)).convert("RGB"), np.int32)
    photo = np.asarray(product_photo().convert("RGB"), np.int32)
    assert np.array_equal(out[12:40, 20:44], photo[12:40, 20:44])
    assert np.abs(out[:8, :8] - photo[:8, :8]).max() > 8


def test_change_background_without_a_prompt_says_so(dservices: Services) -> None:
    owner = dservices.keys.create("test")[0]
    job_id = dservices.jobs.submit(owner, GenerationRequest(task="change_background",
                                                            image=png_uri(product_photo()))).id
    drain(dservices)
    job = dservices.jobs.get(owner, job_id)
    assert job.status == JobStatus.failed and "prompt" in (job.error_message or "")


def test_moodboard_returns_the_board_and_the_room_rendered_after_its_pieces(dservices: Services) -> None:
    room = Image.open(io.BytesIO(make_room_photo(WIDTH, HEIGHT, fmt="PNG"))).convert("RGB")
    pieces = [Image.new("RGB", (32, 32), color) for color in ((30, 90, 200), (200, 160, 40))]
    board, render = run(dservices, task="moodboard", image=png_uri(room), seed=2, output_format="png",
                        extra_images=[png_uri(piece) for piece in pieces], prompt="calm and warm")
    assert board.shape == (BOARD_SIZE[1], BOARD_SIZE[0], 3)
    # The board shows the pieces' own colours.
    for piece in pieces:
        assert (np.abs(board - np.asarray(piece, np.int32)[0, 0]).max(axis=2) <= 2).sum() > 200
    assert render.shape == (HEIGHT, WIDTH, 3)
    assert np.abs(render - np.asarray(room, np.int32)).mean() > 1
    # Same photo, words and seed, other pieces: another render, the pieces reach the model
    # through the IP-Adapter (faintly, with tiny random weights).
    _, other = run(dservices, task="moodboard", image=png_uri(room), seed=2, output_format="png",
                   extra_images=[png_uri(Image.new("RGB", (32, 32), (20, 160, 60)))], prompt="calm and warm")
    assert not np.array_equal(render, other)


def test_the_new_scene_is_finished_with_the_product_on_a_contact_shadow(engine: Any) -> None:
    from roomrender.engines.base import EngineJob
    from roomrender.engines.diffusers import scenes

    request = GenerationRequest(task="change_background", image="product", prompt="on oak", seed=1)
    job = EngineJob("j", request, {"image": product_photo()})
    plan = scenes.plan(engine.planner, job, engine.spec_for(request))
    assert plan is not None and plan.mask is not None
    # The model paints everywhere but the product's core.
    mask = np.asarray(plan.mask.resize((WIDTH, HEIGHT), Image.Resampling.NEAREST)) > 127
    assert mask[2, 2] and mask[44, 60] and not mask[26, 32]
    # What it paints (here a flat grey) gets the product back on top and a shadow under it.
    out = np.asarray(engine.planner.finish(plan, Image.new("RGB", plan.work_size, (160, 160, 160))), np.int32)
    photo = np.asarray(product_photo().convert("RGB"), np.int32)
    assert np.array_equal(out[12:40, 20:44], photo[12:40, 20:44])
    assert out[41, 32].max() < 155 and (out[2, 2] == 160).all()
