"""True size on the floor: a rug (or a 60 x 90 cm mat) laid flat on the floor of box rooms of
known size seen by a known camera, from a reference line on the floor, lands on the pixels the
camera projects its corners to, from both perspective kinds; in the preview engine and through
Spacely's decoration-placement."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from roomrender.canonical.metrology import GeometryError, true_size_box, true_size_quad
from roomrender.canonical.models import GenerationRequest, Task
from roomrender.canonical.perspective import Point, TrueSize
from roomrender.config import Settings
from roomrender.engines.placing import composite_preview
from tests.api.test_spacely import assert_error, poll, submit
from tests.conftest import drain
from tests.servers import serve_files
from tests.synthetic_rooms import Camera, CornerRoom, Pixel, StraightRoom, box_of, png

TOLERANCE = 0.03
CORNER = CornerRoom(Camera(yaw=40))
STRAIGHT = StraightRoom(Camera())
RED = (200, 30, 30)
# (width, depth) in metres: a 60 x 90 cm mat and a 160 x 230 cm rug.
SIZES = [(0.6, 0.9), (1.6, 2.3)]


def points(pixels: list[Pixel]) -> list[Point]:
    return [Point(x=x, y=y) for x, y in pixels]


def rug_on(room: CornerRoom | StraightRoom, size: tuple[float, float]) -> tuple[TrueSize, list[Pixel]]:
    """A rug laid parallel to the wall whose floor line is the reference (the corner room's left
    wall, the straight room's back wall), 0.3 m out from it: its true size and the camera's own
    projection of its corners (far-left, far-right, near-right, near-left)."""
    floor: Callable[[float, float], Pixel] = room.floor_point
    width, depth = size
    along, out = 1.0, 0.3
    corners = [floor(along, out), floor(along + width, out), floor(along + width, out + depth),
               floor(along, out + depth)]
    line, length = ([floor(0.5, 0.0), floor(3.5, 0.0)], 3.0) if isinstance(room, CornerRoom) else (
        [floor(0.2, 0.0), floor(3.4, 0.0)], 3.2)
    true_size = TrueSize(reference_line=points(line), line_length=length, width=width, height=depth,
                         at=points(corners[:1])[0], surface="floor")
    return true_size, corners


def close(found: float, expected: float) -> bool:
    return abs(found - expected) <= TOLERANCE * expected


@pytest.mark.parametrize("room", [CORNER, STRAIGHT], ids=["two_point", "one_point"])
@pytest.mark.parametrize("size", SIZES, ids=["60x90", "160x230"])
def test_a_rug_on_the_floor_lands_where_the_camera_sees_its_corners(room, size):
    true_size, corners = rug_on(room, size)
    quad = true_size_quad(true_size, 640, 480)
    expected_w, expected_h = box_of(corners)
    found_w, found_h = box_of(list(quad))
    assert close(found_w, expected_w) and close(found_h, expected_h)
    # Each corner within 3% of the rug's pixel size of the camera's projection.
    error = np.abs(np.array(quad) - np.array(corners)).max(axis=0)
    assert error[0] <= TOLERANCE * expected_w and error[1] <= TOLERANCE * expected_h


def test_the_reference_line_may_be_given_in_another_unit_and_either_way_round():
    true_size, corners = rug_on(STRAIGHT, (1.6, 2.3))
    in_cm = true_size.model_copy(update={"reference_line": true_size.reference_line[::-1],
                                         "line_length": 320.0, "width": 160.0, "height": 230.0})
    assert np.allclose(np.array(true_size_quad(in_cm, 640, 480)), np.array(corners), atol=1.0)


def test_a_rug_mark_above_the_horizon_is_refused():
    true_size, _ = rug_on(STRAIGHT, (0.6, 0.9))
    on_wall = true_size.model_copy(update={"at": Point(x=300, y=150)})
    with pytest.raises(GeometryError, match="below the horizon.*floor"):
        true_size_box(on_wall, 640, 480)


def red_of(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    return (pixels[..., 0] > 150) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)


def test_the_preview_engine_lays_the_rug_flat_in_perspective():
    true_size, corners = rug_on(STRAIGHT, (1.6, 2.3))
    photo = STRAIGHT.photo()
    request = GenerationRequest(task=Task.place, image="room", product_image="rug", true_size=true_size,
                                placement=true_size_box(true_size, 640, 480))
    placed = composite_preview(photo, Image.new("RGBA", (160, 230), (*RED, 255)), request)
    red = red_of(placed)
    rows, columns = np.nonzero(red)
    expected_w, expected_h = box_of(corners)
    assert close(columns.max() - columns.min() + 1, expected_w)
    assert close(rows.max() - rows.min() + 1, expected_h)
    # Seen from above the floor: its far edge is narrower than its near edge.
    far_row, near_row = red[rows.min() + 2].sum(), red[rows.max() - 2].sum()
    assert far_row < 0.85 * near_row
    # Lying flat: no contact shadow darkens the floor just below its near edge.
    below = np.asarray(placed.convert("L"), dtype=np.int32)[rows.max() + 3, columns.min():columns.max()]
    assert below.min() >= np.asarray(photo.convert("L"), dtype=np.int32)[rows.max() + 3].min() - 2


# -- through Spacely's decoration-placement ----------------------------------------------------

@pytest.fixture(scope="module")
def photos() -> Iterator[SimpleNamespace]:
    files = {"/corner.png": (png(CORNER.photo()), "image/png"),
             "/rug.png": (png(Image.new("RGBA", (160, 230), (*RED, 255))), "image/png")}
    with serve_files(files) as base:
        yield SimpleNamespace(corner=f"{base}/corner.png", rug=f"{base}/rug.png")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"allow_private_urls": True})


@pytest.fixture
def key(api_key: str) -> dict[str, str]:
    return {"X-API-KEY": api_key}


def rug_body(photos: SimpleNamespace, **changes: object) -> dict[str, object]:
    true_size, _ = rug_on(CORNER, (1.6, 2.3))
    return {"imageUrl": photos.corner, "productImageUrl": photos.rug, "surface": "floor",
            "productWidth": 160, "productHeight": 230, "lineLength": 300,
            "referenceLine": [point.model_dump() for point in true_size.reference_line],
            "placement": true_size.at.model_dump(), **changes}


def test_decoration_placement_lays_a_rug_on_the_floor_at_its_true_size(client, key, services, photos):
    _, corners = rug_on(CORNER, (1.6, 2.3))
    ref_id = submit(client, key, "decoration-placement", rug_body(photos))
    drain(services)
    data = poll(client, key, ref_id)
    assert data["status"] == "success", data.get("message")
    placed = Image.open(io.BytesIO(client.get(data["result"][0]).content))
    rows, columns = np.nonzero(red_of(placed))
    expected_w, expected_h = box_of(corners)
    assert close(columns.max() - columns.min() + 1, expected_w)
    assert close(rows.max() - rows.min() + 1, expected_h)


def test_decoration_placement_refuses_a_floor_line_above_the_horizon(client, key, photos):
    body = rug_body(photos, referenceLine=[{"x": 100, "y": 100}, {"x": 300, "y": 90}])
    response = client.post("/api/v1/generate/decoration-placement", headers=key, json=body)
    assert_error(response, 400, "invalid_geometry", "below the horizon")


def test_decoration_placement_names_a_surface_it_does_not_know(client, key, photos):
    response = client.post("/api/v1/generate/decoration-placement", headers=key,
                           json=rug_body(photos, surface="ceiling"))
    assert_error(response, 400, "invalid_request", "surface")
