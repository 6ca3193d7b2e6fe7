"""`cutout` and `place` on the preview engine, through JobService and the worker, checked by pixels;
and the checks every engine gets at submit (boxes against the photo, inputs, formats)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from roomrender.canonical.errors import InvalidImage, InvalidRequest
from roomrender.canonical.models import GenerationRequest, JobStatus
from roomrender.services import Services
from tests.conftest import data_uri, drain, make_room_photo

ROOM_PNG = make_room_photo(320, 240, fmt="PNG")
RED, DARK_RED, BACKDROP = (190, 40, 35), (120, 25, 20), (250, 250, 248)
# The product's visible part is 80x60 in a 120x90 photo: a 4:3 box holds it exactly.
PLACEMENT = {"x": 100, "y": 120, "w": 80, "h": 60}
AREA = {"x": 80, "y": 100, "w": 130, "h": 110}


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def product_photo() -> Image.Image:
    """A red armchair-like block with a darker seat on an off-white studio background."""
    photo = Image.new("RGB", (120, 90), BACKDROP)
    draw = ImageDraw.Draw(photo)
    draw.rectangle((20, 15, 99, 74), fill=RED)
    draw.rectangle((25, 60, 94, 74), fill=DARK_RED)
    return photo


def owner(services: Services):  # type: ignore[no-untyped-def]
    return services.keys.create("test")[0]


def run(services: Services, **fields: object) -> tuple[object, list[Image.Image]]:
    key = owner(services)
    job = services.jobs.submit(key, GenerationRequest(**fields))  # type: ignore[arg-type]
    drain(services)
    job = services.jobs.get(key, job.id)
    assert job.status == JobStatus.succeeded, job.error_message
    return job, [Image.open(io.BytesIO(services.storage.get(o.key))) for o in job.outputs]


def as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int32)


# -- cutout ------------------------------------------------------------------------------------

def test_cutout_makes_the_background_transparent_and_keeps_the_subject(services):
    job, [cut] = run(services, task="cutout", image=data_uri(png(product_photo()), "image/png"))

    assert job.outputs[0].content_type == "image/png"
    assert cut.mode == "RGBA" and cut.size == (120, 90)
    pixels = np.asarray(cut, dtype=np.int32)
    alpha = pixels[..., 3]
    subject = np.zeros(alpha.shape, dtype=bool)
    subject[15:75, 20:100] = True
    inner = np.zeros(alpha.shape, dtype=bool)
    inner[17:73, 22:98] = True
    assert (alpha[~subject] == 0).mean() > 0.99  # the background is gone
    assert (alpha[inner] == 255).all()  # the subject is whole
    assert np.abs(pixels[20:55, 25:95, :3] - RED).max() <= 2
    assert np.abs(pixels[62:72, 28:92, :3] - DARK_RED).max() <= 2


def test_cutout_keeps_the_alpha_of_an_image_that_is_transparent_already(services):
    given = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    ImageDraw.Draw(given).ellipse((10, 5, 50, 35), fill=(30, 90, 200, 255))
    _, [cut] = run(services, task="cutout", image=data_uri(png(given), "image/png"))
    assert np.array_equal(np.asarray(cut)[..., 3], np.asarray(given)[..., 3])


def test_cutout_of_a_busy_background_fails_with_a_clear_message(services):
    key = owner(services)
    job = services.jobs.submit(key, GenerationRequest(task="cutout", image=data_uri(make_room_photo())))
    drain(services)
    job = services.jobs.get(key, job.id)
    assert job.status == JobStatus.failed
    assert job.error_code == "background_not_plain"
    assert "plain background" in (job.error_message or "")


def test_a_cutout_cannot_be_a_jpeg(services):
    with pytest.raises(InvalidRequest, match="png or webp"):
        services.jobs.submit(owner(services), GenerationRequest(
            task="cutout", image=data_uri(make_room_photo()), output_format="jpeg"))


# -- place -------------------------------------------------------------------------------------

def place_fields(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "task": "place", "image": data_uri(ROOM_PNG, "image/png"),
        "product_image": data_uri(png(product_photo()), "image/png"),
        "placement": PLACEMENT, "area": AREA}
    fields.update(changes)
    return fields


def test_place_puts_the_product_in_its_box_and_changes_nothing_outside_the_area(services):
    job, [placed] = run(services, **place_fields())

    room = as_array(Image.open(io.BytesIO(ROOM_PNG)))
    out = as_array(placed)
    assert placed.size == (320, 240)
    area = np.zeros(out.shape[:2], dtype=bool)
    area[AREA["y"]:AREA["y"] + AREA["h"], AREA["x"]:AREA["x"] + AREA["w"]] = True
    assert np.array_equal(out[~area], room[~area])

    # The placement box holds the product, scaled 1:1 here: its red body and darker seat, in
    # their places, their colours kept within the light matching's bounds.
    body = out[122:163, 103:177]
    seat = out[168:178, 108:172]
    assert np.abs(body - RED).max() <= 30 and np.abs(body.mean((0, 1)) - RED).max() <= 20
    assert np.abs(seat - DARK_RED).max() <= 30
    # A contact shadow darkens the floor just under it, inside the area.
    below = (slice(181, 184), slice(110, 170))
    assert out[below].mean() < room[below].mean() - 5
    assert job.request.area_box is not None


def test_place_scales_the_product_to_fit_its_box_standing_on_its_bottom_edge(services):
    # A 40x60 box for a 4:3 product: 40x30 wide, at the bottom of the box.
    _, [placed] = run(services, **place_fields(placement={"x": 120, "y": 110, "w": 40, "h": 60}))
    out = as_array(placed)
    room = as_array(Image.open(io.BytesIO(ROOM_PNG)))
    assert np.abs(out[142:160, 123:157] - RED).max() <= 30
    assert np.array_equal(out[110:135, 120:160], room[110:135, 120:160])  # above it: the room


def test_place_without_an_area_may_change_a_margin_around_the_placement(services):
    job, [placed] = run(services, **place_fields(area=None))
    out, room = as_array(placed), as_array(Image.open(io.BytesIO(ROOM_PNG)))
    changed = np.argwhere(np.abs(out - room).sum(axis=2) > 0)
    top, left = changed.min(axis=0)
    bottom, right = changed.max(axis=0)
    assert top >= 120 - 15 and left >= 100 - 20 and bottom < 180 + 15 and right < 180 + 20


@pytest.mark.parametrize("changes,message", [
    ({"placement": {"x": 300, "y": 120, "w": 80, "h": 60}}, "reaches outside the photo"),
    ({"area": {"x": 0, "y": 0, "w": 400, "h": 240}}, "area {x: 0, y: 0, w: 400, h: 240} reaches outside"),
    ({"placement": {"x": 100, "y": 120, "w": 4, "h": 60}}, "too small"),
    ({"area": {"x": 150, "y": 100, "w": 100, "h": 100}}, "must lie inside area"),
    ({"area": "floor"}, "area is a box"),
    ({"product_image": None}, "product_image"),
    ({"placement": None}, "placement {x, y, w, h}"),
])
def test_place_refuses_boxes_that_do_not_fit_and_missing_inputs(services, changes, message):
    with pytest.raises(InvalidRequest, match=message.replace("{", r"\{").replace("}", r"\}")):
        services.jobs.submit(owner(services), GenerationRequest(**place_fields(**changes)))  # type: ignore[arg-type]
    assert drain(services) == 0


def test_place_refuses_a_product_that_is_not_an_image(services):
    with pytest.raises(InvalidImage):
        services.jobs.submit(owner(services), GenerationRequest(**place_fields(  # type: ignore[arg-type]
            product_image=data_uri(b"not an image at all", "image/png"))))


def test_empty_and_negative_boxes_are_refused_by_the_request_itself():
    for box in ({"x": 0, "y": 0, "w": 0, "h": 10}, {"x": -5, "y": 0, "w": 10, "h": 10},
                {"x": 0, "y": 0, "w": 10}):
        with pytest.raises(ValueError, match="placement"):
            GenerationRequest(**place_fields(placement=box))  # type: ignore[arg-type]


def test_recolor_still_takes_a_surface_and_refuses_a_box(services):
    with pytest.raises(InvalidRequest, match="wall, floor or ceiling"):
        services.jobs.submit(owner(services), GenerationRequest(
            task="recolor", image=data_uri(make_room_photo()), color="#A3B18A", area=AREA))  # type: ignore[arg-type]


def test_the_native_api_places_a_product(client, auth, services):
    product = client.post("/v1/uploads", headers=auth, files={"file": ("chair.png", png(product_photo()))})
    assert product.status_code == 201, product.text
    created = client.post("/v1/jobs", headers=auth, json={
        "task": "place", "image": data_uri(ROOM_PNG, "image/png"), "product_image": product.json()["id"],
        "placement": PLACEMENT, "area": AREA})
    assert created.status_code == 202, created.text
    drain(services)
    job = client.get(created.headers["Location"], headers=auth).json()
    assert job["status"] == "succeeded" and job["task"] == "place"
    placed = as_array(Image.open(io.BytesIO(client.get(job["outputs"][0]["url"]).content)))
    assert np.abs(placed[125:160, 105:175] - RED).max() <= 30

    outside = client.post("/v1/jobs", headers=auth, json={
        "task": "place", "image": data_uri(ROOM_PNG, "image/png"), "product_image": product.json()["id"],
        "placement": {"x": 290, "y": 200, "w": 60, "h": 60}})
    assert outside.status_code == 400
    assert outside.json()["error"]["code"] == "invalid_box"
    catalog = {task["id"]: task["supported"] for task in client.get("/v1/catalog").json()["tasks"]}
    assert catalog["place"] is True and catalog["cutout"] is True


def test_a_soft_edge_becomes_a_soft_alpha_without_a_fringe_of_the_background():
    from PIL import ImageFilter

    from roomrender.engines.cutout import cut_out

    photo = Image.new("RGB", (200, 150), (245, 245, 242))
    ImageDraw.Draw(photo).ellipse((40, 30, 160, 120), fill=(40, 90, 180))
    cut = np.asarray(cut_out(photo.filter(ImageFilter.GaussianBlur(1.5))), dtype=np.int32)
    across = cut[75, 30:52]  # from the background into the subject, through its blurred edge
    alpha = across[:, 3]
    assert alpha[0] == 0 and alpha[-1] == 255
    assert np.all(np.diff(alpha) >= 0) and ((alpha > 0) & (alpha < 255)).sum() >= 3
    # The edge pixels keep the subject's colour, not a mix with the background's.
    visible = across[alpha > 40, :3]
    assert np.abs(visible - (40, 90, 180)).max() <= 25
