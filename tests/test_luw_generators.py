"""Luw's other generators on the preview engine, as a Luw client calls them: /v2/generate, then
/v2/results, then the output fetched and checked for what it is (an SVG drawing, a tile that
wraps, a product on a new background, a mood board)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree

import cairosvg
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from roomrender.engines.cutout import cut_out
from roomrender.engines.moodboards import color_name, palette
from roomrender.services import Services
from tests.conftest import data_uri, drain, make_room_photo

SVG = "{http://www.w3.org/2000/svg}"
ROUNDING = 0.5


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def generate(client: TestClient, auth: dict[str, str], services: Services, **fields: object) -> dict:
    started = client.post("/v2/generate", headers=auth, json=fields)
    assert started.status_code == 200, started.text
    drain(services)
    answer = client.post("/v2/results", headers=auth, json={"processing_url": started.json()["processing_url"]})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def fetched(client: TestClient, answer: dict) -> tuple[str, bytes]:
    assert answer["status"] is True, answer
    response = client.get(answer["output"])
    assert response.status_code == 200
    return response.headers["content-type"], response.content


def credits_used(client: TestClient, auth: dict[str, str]) -> int:
    return int(client.get("/v2/credits", headers=auth).json()["credits"]["used"])


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


# -- vector ------------------------------------------------------------------------------------

def test_vector_traces_the_photo_into_an_svg_that_renders_back_to_it(client, auth, services):
    photo = make_room_photo(320, 240, "PNG")
    answer = generate(client, auth, services, model="vector", image=data_uri(photo, "image/png"))
    content_type, svg = fetched(client, answer)
    assert content_type.startswith("image/svg+xml")
    assert answer["output"].endswith(".svg")
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox") == "0 0 320 240"
    assert (root.get("width"), root.get("height")) == ("320", "240")
    assert len(root.findall(f"{SVG}path")) > 5
    rendered = Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg))).convert("RGB")
    assert rendered.size == (320, 240)
    error = np.abs(pixels(rendered) - pixels(Image.open(io.BytesIO(photo)))).mean()
    assert error < 6.0, error
    assert credits_used(client, auth) == 1


# -- pattern -----------------------------------------------------------------------------------

def wraps(tile: np.ndarray) -> bool:
    """Across each wrapped edge (last column to first, last row to first) the mean difference is
    no larger than between some pair of neighbouring columns (rows) inside, give or take half a
    level of rounding. (The wrapped edges of an offset tile are neighbours of the picture it
    came from: they may be as sharp as that picture's sharpest edge, no sharper.)"""
    inside_columns = np.abs(np.diff(tile, axis=1)).mean(axis=(0, 2))
    inside_rows = np.abs(np.diff(tile, axis=0)).mean(axis=(1, 2))
    across_columns = np.abs(tile[:, 0] - tile[:, -1]).mean()
    across_rows = np.abs(tile[0] - tile[-1]).mean()
    return bool(across_columns <= inside_columns.max() + ROUNDING
                and across_rows <= inside_rows.max() + ROUNDING)


@pytest.mark.parametrize("texture,side", [(-1, 512), (0, 768)])
def test_pattern_makes_a_tile_of_the_texture_size_that_wraps_without_a_seam(client, auth, services,
                                                                             texture, side):
    photo = make_room_photo(400, 300, "PNG")
    assert not wraps(pixels(Image.open(io.BytesIO(photo))))  # the photo itself has seams
    answer = generate(client, auth, services, model="pattern", image=data_uri(photo, "image/png"),
                      prompt="linen", texture=texture, format="png")
    content_type, data = fetched(client, answer)
    tile = Image.open(io.BytesIO(data))
    assert content_type == "image/png" and tile.size == (side, side)
    assert wraps(pixels(tile))
    # Two tiles side by side: the join is no harsher than the picture's own edges.
    assert wraps(np.concatenate([pixels(tile), pixels(tile)], axis=1))


def test_pattern_from_words_alone_needs_the_diffusers_engine(client, auth, services):
    response = client.post("/v2/generate", headers=auth, json={"model": "pattern", "prompt": "terrazzo"})
    assert response.status_code == 400
    assert "needs the diffusers engine" in response.json()["error"]


def test_pattern_texture_must_be_one_of_three(client, auth, services):
    response = client.post("/v2/generate", headers=auth, json={
        "model": "pattern", "image": data_uri(make_room_photo()), "texture": 2})
    assert response.status_code == 400 and "texture must be -1, 0 or 1" in response.json()["error"]


# -- changebg ----------------------------------------------------------------------------------

def product_photo() -> Image.Image:
    """A red block with a darker seat on an off-white studio background."""
    photo = Image.new("RGB", (160, 120), (242, 240, 236))
    draw = ImageDraw.Draw(photo)
    draw.rectangle((30, 20, 129, 99), fill=(180, 40, 40))
    draw.rectangle((36, 80, 123, 99), fill=(110, 25, 25))
    return photo


@pytest.mark.parametrize("background", [
    {}, {"style_transfer": data_uri(make_room_photo(200, 150))},
])
def test_changebg_keeps_the_products_pixels_exactly_on_a_new_background(client, auth, services,
                                                                         background):
    product = product_photo()
    answer = generate(client, auth, services, model="changebg", image=data_uri(png(product), "image/png"),
                      prompt="on a marble counter", format="png", **background)
    _, data = fetched(client, answer)
    result = pixels(Image.open(io.BytesIO(data)))
    original = pixels(product)
    opaque = np.asarray(cut_out(product).getchannel("A")) == 255
    assert opaque.sum() > 5000
    assert np.array_equal(result[opaque], original[opaque])
    # The studio backdrop is gone: the background around the product is another picture.
    corner = result[:10, :10].reshape(-1, 3).mean(axis=0)
    assert np.abs(corner - np.array([242, 240, 236])).max() > 8


def test_changebg_needs_a_prompt_and_removebg_still_cuts_out(client, auth, services):
    image = data_uri(png(product_photo()), "image/png")
    refused = client.post("/v2/generate", headers=auth, json={"model": "changebg", "image": image})
    assert refused.status_code == 400 and "removebg" in refused.json()["error"]
    _, data = fetched(client, generate(client, auth, services, model="removebg", image=image))
    cut = Image.open(io.BytesIO(data))
    assert cut.mode == "RGBA" and cut.getpixel((2, 2))[3] == 0 and cut.getpixel((80, 50))[3] == 255


# -- moodboard ---------------------------------------------------------------------------------

def test_moodboard_composes_the_photo_pieces_and_their_named_palette(client, auth, services):
    photo = make_room_photo(320, 240, "PNG")
    sofa, rug = Image.new("RGB", (90, 60), (30, 60, 150)), Image.new("RGB", (80, 80), (200, 30, 30))
    answer = generate(client, auth, services, model="moodboard", image=data_uri(photo, "image/png"),
                      prompt="calm coastal living room", format="png",
                      extra_image_1=data_uri(png(sofa), "image/png"),
                      extra_image_2=data_uri(png(rug), "image/png"))
    _, data = fetched(client, answer)
    board = Image.open(io.BytesIO(data)).convert("RGB")
    assert board.size == (1200, 900)
    swatches = palette([Image.open(io.BytesIO(photo)), sofa, rug])
    assert 3 <= len(swatches) <= 6
    colors = {tuple(int(v) for v in pixel) for pixel in np.asarray(board).reshape(-1, 3)}
    for swatch in swatches:
        assert swatch.rgb in colors, swatch  # each swatch is painted on the board
    names = {swatch.name for swatch in swatches}
    assert {"darkslateblue", "firebrick"} <= names  # the pieces' own colours lead the palette
    assert credits_used(client, auth) == 1


def test_colour_names_are_the_nearest_css_names():
    assert color_name((255, 255, 255)) == "white"
    assert color_name((250, 128, 114)) == "salmon"
    assert color_name((0, 0, 130)) in {"navy", "darkblue"}


# -- the same generators through the other dialects ----------------------------------------------

def test_replicate_vectorize_model_answers_the_svgs_url(client, auth, services):
    created = client.post("/v1/models/roomrender/vectorize/predictions", headers=auth,
                          json={"input": {"image": data_uri(make_room_photo())}})
    assert created.status_code == 201, created.text
    drain(services)
    done = client.get(created.json()["urls"]["get"], headers=auth).json()
    assert done["status"] == "succeeded", done
    drawing = client.get(done["output"])
    assert drawing.headers["content-type"].startswith("image/svg+xml")
    assert ElementTree.fromstring(drawing.content).get("viewBox") == "0 0 320 240"


def test_native_tasks_list_the_new_generators_with_their_output_kinds(client):
    listed = {task["name"]: task for task in client.get("/v1/tasks").json()["tasks"]}
    assert listed["vectorize"]["output_kind"] == "vector"
    assert {"pattern", "change_background", "moodboard"} <= set(listed)
    # The preview engine honours a pattern's size, not its words.
    assert "width" in listed["pattern"]["options"]
    assert "width" not in listed["pattern"]["ignored_options"]
    assert "prompt" in listed["pattern"]["ignored_options"]


# -- fluw --------------------------------------------------------------------------------------

def test_fluw_reads_its_aspect_ratio_and_costs_two_credits_an_image(client, auth, services):
    from roomrender.api.luw.prices import luw_price
    from roomrender.api.luw.requests import to_request
    from roomrender.canonical.tasks import cost_of

    request = to_request({"model": "fluw", "prompt": "a sunlit loft", "aspect_ratio": "16:9"})
    assert (request.task.value, request.aspect_ratio) == ("text_to_image", "16:9")
    # 2 credits an image is Luw's price; a native text_to_image costs 1.
    assert (luw_price("fluw", request, services.settings), cost_of(request)) == (2, 1)
    three = to_request({"model": "fluw", "prompt": "a loft", "num_images": 3})
    assert luw_price("fluw", three, services.settings) == 6
    bad = client.post("/v2/generate", headers=auth, json={"model": "fluw", "prompt": "a loft",
                                                          "aspect_ratio": "5:4"})
    assert bad.status_code == 400 and "aspect_ratio" in bad.json()["error"]
    # The preview engine has no model to paint from words.
    refused = client.post("/v2/generate", headers=auth, json={"model": "fluw", "prompt": "a loft",
                                                              "aspect_ratio": "9:16"})
    assert refused.status_code == 400 and "needs the diffusers engine" in refused.json()["error"]


# -- landscape ---------------------------------------------------------------------------------

def test_landscape_restyles_an_outdoor_photo(client, auth, services):
    from roomrender.api.luw.requests import to_request

    request = to_request({"model": "landscape", "image": "https://example.com/yard.jpg",
                          "prompt": "a gravel garden", "styles": "Modern"})
    assert (request.task.value, request.exterior, request.style) == ("restyle", True, "modern")
    photo = make_room_photo(320, 240, "PNG")
    _, data = fetched(client, generate(client, auth, services, model="landscape", styles="Modern",
                                       image=data_uri(photo, "image/png"), format="png"))
    restyled = Image.open(io.BytesIO(data))
    assert restyled.size == (320, 240)
    assert np.abs(pixels(restyled) - pixels(Image.open(io.BytesIO(photo)))).mean() > 2
