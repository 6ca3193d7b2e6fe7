"""Luw's generators that need a model, as a Luw client calls them (/v2/generate, then
/v2/results, then the output fetched), on the diffusers engine with tiny random components:
what comes back is of the right kind and shape, the pattern's tile wraps, fluw costs Luw's 2
credits an image."""

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
from roomrender.config import Settings  # noqa: E402
from roomrender.engines import load_engine  # noqa: E402
from roomrender.services import Services, build_services  # noqa: E402
from tests.conftest import BASE_URL, data_uri, drain, make_room_photo  # noqa: E402

ROUNDING = 0.5


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


@pytest.fixture
def luw(dservices: Services) -> Iterator[tuple[TestClient, dict[str, str]]]:
    _, plaintext = dservices.keys.create("luw-client")
    app = create_app(dservices.settings, services=dservices, workers=0, janitor=False)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client, {"Authorization": f"Bearer {plaintext}"}


def generated(luw: tuple[TestClient, dict[str, str]], services: Services, **fields: object) -> tuple[str, bytes]:
    client, auth = luw
    started = client.post("/v2/generate", headers=auth, json=fields)
    assert started.status_code == 200, started.text
    drain(services)
    answer = client.post("/v2/results", headers=auth, json={"processing_url": started.json()["processing_url"]})
    assert answer.status_code == 200 and answer.json()["status"] is True, answer.text
    output = client.get(answer.json()["output"])
    assert output.status_code == 200
    return output.headers["content-type"], output.content


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


def wraps(tile: np.ndarray) -> bool:
    """The mean difference across each wrapped edge (last column to first, last row to first)
    is no larger than between some pair of neighbouring columns (rows) inside."""
    inside_columns = np.abs(np.diff(tile, axis=1)).mean(axis=(0, 2))
    inside_rows = np.abs(np.diff(tile, axis=0)).mean(axis=(1, 2))
    across_columns = np.abs(tile[:, 0] - tile[:, -1]).mean()
    across_rows = np.abs(tile[0] - tile[-1]).mean()
    return bool(across_columns <= inside_columns.max() + ROUNDING
                and across_rows <= inside_rows.max() + ROUNDING)


def test_with_circular_padding_the_unet_and_the_vae_see_no_edge(engine: Any) -> None:
    """What makes the tile wrap: inside the block a shifted input gives the same output shifted
    (the edge is like any other place: the models see round it), outside it does not; and the
    models are put back as they were (other tasks' pipelines share them)."""
    from roomrender.canonical.models import Task
    from roomrender.engines.diffusers.patterns import circular_convolutions

    pipeline = engine.store.pipeline(engine.registry.task(Task.pattern))
    unet, vae = pipeline.unet, pipeline.vae
    generator = torch.Generator().manual_seed(0)
    latent = torch.randn(1, unet.config.in_channels, 8, 8, generator=generator)
    words = torch.randn(1, 77, unet.config.cross_attention_dim, generator=generator)
    # Shifts by whole cells of the UNet's coarsest grid; the VAE's by its scale factor.
    shift, scale = 2 ** (len(unet.config.block_out_channels) - 1), pipeline.vae_scale_factor

    def unet_gap() -> float:
        shifted = unet(torch.roll(latent, shift, dims=3), 500, encoder_hidden_states=words).sample
        return float((shifted - torch.roll(unet(latent, 500, encoder_hidden_states=words).sample,
                                           shift, dims=3)).abs().max())

    def vae_gap() -> float:
        shifted = vae.decode(torch.roll(latent, shift, dims=2)).sample
        return float((shifted - torch.roll(vae.decode(latent).sample, shift * scale, dims=2)).abs().max())

    with torch.inference_mode():
        with circular_convolutions(unet, vae) as changed:
            assert changed > 0
            assert unet_gap() < 1e-4 and vae_gap() < 1e-4
        assert unet_gap() > 1e-2 and vae_gap() > 1e-2
    assert {conv.padding_mode for conv in [*unet.modules(), *vae.modules()]
            if isinstance(conv, torch.nn.Conv2d)} == {"zeros"}


def test_pattern_from_words_wraps_at_the_working_size(engine: Any) -> None:
    from roomrender.canonical.models import GenerationRequest, Task
    from roomrender.engines.base import BatchContext, EngineJob

    # 64 px is the test registry's working size: the tile comes straight from the VAE, unresized.
    request = GenerationRequest(task=Task.pattern, prompt="terrazzo", seed=5, width=64, height=64, n=2)
    [result] = engine.generate([EngineJob("j", request, {})], BatchContext(lambda *_: None, lambda _: False))
    assert not isinstance(result, Exception), result
    for rendered in result:
        tile = np.asarray(rendered.image.convert("RGB"), dtype=np.float32)
        assert tile.shape == (64, 64, 3) and tile.std() > 1
        assert wraps(tile)


def test_pattern_texture_sizes_and_a_picture_as_its_start(luw, dservices) -> None:
    photo = make_room_photo(120, 90, "PNG")
    content_type, data = generated(luw, dservices, model="pattern", prompt="linen", texture=-1,
                                   image=data_uri(photo, "image/png"), format="png", seed=2)
    tile = pixels(data)
    assert content_type == "image/png" and tile.shape == (512, 512, 3)
    assert wraps(tile)
    # Two side by side and two stacked: no seam at the joins either.
    assert wraps(np.concatenate([tile, tile], axis=1)) and wraps(np.concatenate([tile, tile], axis=0))


def test_fluw_renders_its_aspect_ratio_and_costs_luws_two_credits(luw, dservices) -> None:
    client, auth = luw
    content_type, data = generated(luw, dservices, model="fluw", prompt="a sunlit loft",
                                   aspect_ratio="16:9", seed=1)
    width, height = Image.open(io.BytesIO(data)).size
    assert content_type.startswith("image/") and width > height
    assert client.get("/v2/credits", headers=auth).json()["credits"]["used"] == 2


def test_fluw_with_a_guide_image_starts_from_it(luw, dservices) -> None:
    pictures = {}
    for name, photo in [("none", None), ("room", make_room_photo(160, 90, "PNG")),
                        ("flat", make_flat_photo())]:
        guide = {} if photo is None else {"image": data_uri(photo, "image/png")}
        content_type, data = generated(luw, dservices, model="fluw", prompt="a sunlit loft",
                                       aspect_ratio="16:9", seed=7, format="png", **guide)
        pictures[name] = pixels(data)
        assert content_type == "image/png"
        assert pictures[name].shape[1] > pictures[name].shape[0]
    # Same words, same seed: what differs is the guide.
    assert np.abs(pictures["room"] - pictures["none"]).mean() > 1
    assert np.abs(pictures["room"] - pictures["flat"]).mean() > 1


def make_flat_photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (160, 90), (30, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_fluwvector_paints_then_traces_an_svg_of_the_pictures_shape(luw, dservices) -> None:
    import xml.etree.ElementTree as ElementTree

    client, auth = luw
    content_type, data = generated(luw, dservices, model="fluwvector", prompt="a sunlit loft",
                                   aspect_ratio="16:9", seed=3, format="png")
    assert content_type.startswith("image/svg+xml")
    drawing = ElementTree.fromstring(data)
    _, _, width, height = (float(v) for v in drawing.get("viewBox", "").split())
    assert width > height and len(list(drawing.iter("{http://www.w3.org/2000/svg}path"))) > 0
    # Luw's price of fluwvector: 2 credits.
    assert client.get("/v2/credits", headers=auth).json()["credits"]["used"] == 2


# -- landscape ---------------------------------------------------------------------------------

def test_outdoor_styles_name_ade20k_classes_to_keep_and_have_their_words() -> None:
    from roomrender.api.luw.requests import style_id
    from roomrender.catalog import load_data_file, styles
    from roomrender.engines.diffusers.prompts import templates

    classes = {entry["name"] for entry in load_data_file("ade20k.json")["classes"]}
    outdoor = {style.id: style for style in styles().values() if style.outdoor}
    assert {"english_garden", "zen_garden", "modern_yard", "modern_facade"} <= set(outdoor)
    for style in outdoor.values():
        assert style.keep and set(style.keep) <= classes, style.id
        assert style.id in templates()["styles"]
        assert style_id(style.name) == style.id  # Luw's name is the catalog's
    # A garden keeps the house, its windows and the paths; a facade style repaints the building.
    assert {"house", "windowpane", "path"} <= set(outdoor["english_garden"].keep)
    assert "building" not in outdoor["modern_facade"].keep


def test_a_garden_restyle_keeps_the_house_windows_and_paths() -> None:
    from roomrender.catalog import find_style
    from roomrender.engines.diffusers.preprocessors import ADE_ID, mask_sparing_openings

    labels = np.full((32, 32), ADE_ID["grass"])
    labels[:12] = ADE_ID["house"]
    labels[4:8, 4:8] = ADE_ID["windowpane"]
    labels[20:, 14:18] = ADE_ID["path"]
    garden = find_style("english_garden")
    assert garden is not None
    repaint = np.asarray(mask_sparing_openings(labels, {"windowpane", "door", *garden.keep})) > 0
    assert not repaint[:10].any() and not repaint[22:, 15:17].any()  # house, path: kept
    assert repaint[16:, :8].all()  # the lawn: restyled
    # Indoors the same labels keep only the window.
    indoor = np.asarray(mask_sparing_openings(labels)) > 0
    assert indoor[0].all() and not indoor[5:7, 5:7].any()


def test_landscape_in_a_garden_style_renders_the_photo_restyled(luw, dservices) -> None:
    photo = make_room_photo(96, 64, "PNG")
    content_type, data = generated(luw, dservices, model="landscape", styles="English Garden",
                                   image=data_uri(photo, "image/png"), prompt="a cottage garden",
                                   seed=4, format="png")
    assert content_type == "image/png" and pixels(data).shape == (64, 96, 3)


# -- magicprompt -------------------------------------------------------------------------------

def test_magicprompt_applies_the_instruction_to_the_photo(luw, dservices) -> None:
    photo = make_room_photo(96, 64, "PNG")
    content_type, data = generated(luw, dservices, model="magicprompt", image=data_uri(photo, "image/png"),
                                   prompt="make the sofa green", seed=2, format="png")
    assert content_type == "image/png" and pixels(data).shape == (64, 96, 3)


def test_magicprompt_refuses_what_it_does_not_do_yet(luw) -> None:
    client, auth = luw
    photo = data_uri(make_room_photo(96, 64, "PNG"), "image/png")
    for extra in ({"extra_image_1": photo}, {"hd": 2}):
        answer = client.post("/v2/generate", headers=auth, json={
            "model": "magicprompt", "image": photo, "prompt": "make the sofa green", **extra})
        assert answer.status_code == 400 and "not supported by this server yet" in answer.json()["error"]
