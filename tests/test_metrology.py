"""Single-view metrology on box rooms of known size seen by a known camera: `measure` recovers the
room's width and depth, a true size puts a 60 x 90 cm frame at its pixel size, and marks that make
no room are refused with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from roomrender.canonical.metrology import (
    GeometryError,
    measure_room,
    quad_bounds,
    true_size_box,
    true_size_quad,
)
from roomrender.canonical.models import GenerationRequest, Task
from roomrender.canonical.perspective import OnePointRoom, Point, TrueSize, TwoPointRoom
from roomrender.engines.base import BatchContext, EngineJob, RenderedData, RenderedImage
from roomrender.engines.placing import composite_preview
from roomrender.engines.preview.engine import PreviewEngine
from tests.conftest import data_uri, drain
from tests.synthetic_rooms import Camera, CornerRoom, Pixel, StraightRoom, box_of, png

TOLERANCE = 0.03
FRAME_WIDTH, FRAME_HEIGHT = 0.6, 0.9


def points(pixels: list[Pixel]) -> list[Point]:
    return [Point(x=x, y=y) for x, y in pixels]


def corner_marks(room: CornerRoom) -> TwoPointRoom:
    return TwoPointRoom(top=points(room.top()), floor=points(room.floor_marks()))


def straight_marks(room: StraightRoom) -> OnePointRoom:
    return OnePointRoom(**{name: points(line) for name, line in room.lines().items()})


def close(found: float, expected: float) -> bool:
    return abs(found - expected) <= TOLERANCE * expected


# Cameras turned and zoomed differently: the focal length is found from the walls' vanishing points.
@pytest.mark.parametrize("camera", [Camera(yaw=40), Camera(yaw=35, focal_ratio=0.55),
                                    Camera(yaw=45, focal_ratio=0.6, width=800, height=600)])
def test_two_point_measure_recovers_the_walls_of_a_box_room(camera):
    room = CornerRoom(camera)
    found = measure_room(corner_marks(room), room.height, camera.width, camera.height)
    assert close(found.width, room.width) and close(found.depth, room.depth)
    assert close(found.height_check, room.height)
    assert abs(found.focal_length - camera.focal) < 0.01 * camera.focal


def test_two_point_measure_survives_marks_clicked_a_pixel_off():
    camera = Camera(yaw=40)
    room = CornerRoom(camera)
    rng = np.random.default_rng(7)
    top = [(x + rng.uniform(-1, 1), y + rng.uniform(-1, 1)) for x, y in room.top()]
    floor = [(x + rng.uniform(-1, 1), y + rng.uniform(-1, 1)) for x, y in room.floor_marks()]
    found = measure_room(TwoPointRoom(top=points(top), floor=points(floor)), room.height, 640, 480)
    assert close(found.width, room.width) and close(found.depth, room.depth)


def test_one_point_measure_recovers_the_width_and_depth_of_a_box_room():
    room = StraightRoom(Camera())
    found = measure_room(straight_marks(room), room.height, 640, 480)
    assert close(found.width, room.width) and close(found.depth, room.depth)
    assert close(found.height_check, room.height)
    # Its dimension lines join the room's own corners on the photo.
    width_line = next(d for d in found.dimensions if d.name == "width")
    far_left, far_right = room.lines()["bottom_left"][0], room.lines()["bottom_right"][0]
    assert np.allclose(width_line.start, far_left, atol=0.5) and np.allclose(width_line.end, far_right, atol=0.5)


@pytest.mark.parametrize("along,above", [(1.0, 2.0), (2.5, 1.6), (3.2, 1.2)])
def test_true_size_frame_on_an_oblique_wall_takes_its_pixel_size(along, above):
    room = CornerRoom(Camera(yaw=40))
    wall = room.left_wall_point
    frame = [wall(along, above), wall(along + FRAME_WIDTH, above),
             wall(along + FRAME_WIDTH, above - FRAME_HEIGHT), wall(along, above - FRAME_HEIGHT)]
    true_size = TrueSize(reference_line=points([wall(0.5, 1.0), wall(3.5, 1.0)]), line_length=3.0,
                         width=FRAME_WIDTH, height=FRAME_HEIGHT, at=points(frame[:1])[0])
    quad = true_size_quad(true_size, 640, 480)
    expected_w, expected_h = box_of(frame)
    found_w, found_h = box_of(list(quad))
    assert close(found_w, expected_w) and close(found_h, expected_h)
    assert np.allclose(np.array(quad), np.array([frame[0], frame[1], frame[2], frame[3]]), atol=1.0)


@pytest.mark.parametrize("line", ["horizontal", "vertical"])
def test_true_size_frame_on_the_back_wall_of_a_straight_room_takes_its_pixel_size(line):
    room = StraightRoom(Camera())
    wall = room.back_wall_point
    reference = ([wall(0.2, 0.0), wall(3.4, 0.0)], 3.2) if line == "horizontal" else (
        [wall(0.1, 0.0), wall(0.1, room.height)], room.height)
    frame = [wall(1.5, 2.0), wall(1.5 + FRAME_WIDTH, 2.0 - FRAME_HEIGHT)]
    true_size = TrueSize(reference_line=points(reference[0]), line_length=reference[1],
                         width=FRAME_WIDTH, height=FRAME_HEIGHT, at=points(frame[:1])[0])
    expected_w, expected_h = box_of(frame)
    _, _, found_w, found_h = quad_bounds(true_size_quad(true_size, 640, 480))
    # Whole pixels: the bounds round outwards by at most one pixel a side.
    assert abs(found_w - expected_w) <= max(TOLERANCE * expected_w, 2)
    assert abs(found_h - expected_h) <= max(TOLERANCE * expected_h, 2)


def test_the_preview_engine_warps_the_whole_png_onto_the_wall():
    room = CornerRoom(Camera(yaw=40))
    wall = room.left_wall_point
    frame = [wall(1.0, 2.0), wall(1.6, 2.0), wall(1.6, 1.1), wall(1.0, 1.1)]
    true_size = TrueSize(reference_line=points([wall(0.5, 1.0), wall(3.5, 1.0)]), line_length=3.0,
                         width=FRAME_WIDTH, height=FRAME_HEIGHT, at=points(frame[:1])[0])
    photo = room.photo()
    placement = true_size_box(true_size, 640, 480)
    request = GenerationRequest(task=Task.place, image="room", product_image="frame",
                                true_size=true_size, placement=placement)
    red_frame = Image.new("RGBA", (120, 180), (200, 30, 30, 255))
    placed = np.asarray(composite_preview(photo, red_frame, request), dtype=np.int32)
    red = (placed[..., 0] > 150) & (placed[..., 1] < 90) & (placed[..., 2] < 90)
    rows, columns = np.nonzero(red)
    expected_w, expected_h = box_of(frame)
    assert close(columns.max() - columns.min() + 1, expected_w)
    assert close(rows.max() - rows.min() + 1, expected_h)
    # The frame is nearer on its left (the wall recedes to the right): taller there.
    left_column, right_column = red[:, columns.min() + 2].sum(), red[:, columns.max() - 2].sum()
    assert left_column > right_column


def test_the_preview_engine_measures_a_photo_into_a_drawing_and_json():
    room = StraightRoom(Camera())
    request = GenerationRequest(task=Task.measure, image="room", room=straight_marks(room),
                                room_height=room.height)
    photo = room.photo()
    [result] = PreviewEngine().generate([EngineJob("job", request, {"image": photo})], _context())
    assert not isinstance(result, Exception)
    image, data = result
    assert isinstance(image, RenderedImage) and isinstance(data, RenderedData)
    assert data.label == "measurements"
    assert close(data.value["width"], room.width) and close(data.value["depth"], room.depth)
    assert {d["name"] for d in data.value["dimensions"]} == {"width", "depth", "height"}
    # The dimension lines are drawn in their colour along the back wall's bottom edge.
    drawn = np.asarray(image.image.convert("RGB"), dtype=np.int32)
    y = round(room.lines()["bottom_left"][0][1])
    x0, x1 = round(room.lines()["bottom_left"][0][0]), round(room.lines()["bottom_right"][0][0])
    yellow = (drawn[y, x0:x1, 0] > 200) & (drawn[y, x0:x1, 2] < 80)
    assert yellow.mean() > 0.5
    assert np.array_equal(drawn[5:20, 5:20], np.asarray(photo, dtype=np.int32)[5:20, 5:20])


def _context() -> BatchContext:
    return BatchContext(lambda job_id, fraction: None, lambda job_id: False)


# -- marks that make no room ------------------------------------------------------------------

def test_parallel_ceiling_and_floor_lines_are_refused():
    marks = TwoPointRoom(top=points([(100, 100), (300, 150), (500, 100)]),
                         floor=points([(100, 300), (300, 350), (500, 300)]))
    with pytest.raises(GeometryError, match="parallel"):
        measure_room(marks, 2.7, 640, 480)


def test_points_off_the_photo_are_refused():
    room = CornerRoom(Camera(yaw=40))
    top = room.top()
    top[0] = (-50.0, top[0][1])
    with pytest.raises(GeometryError, match="off the photo.*640x480"):
        measure_room(TwoPointRoom(top=points(top), floor=points(room.floor_marks())), 2.7, 640, 480)


def test_one_point_edges_that_are_all_parallel_are_refused():
    edge = [(100, 100), (100, 300)]
    marks = OnePointRoom(top_left=points(edge), top_right=points([(200, 100), (200, 300)]),
                         bottom_left=points([(300, 100), (300, 300)]),
                         bottom_right=points([(400, 100), (400, 300)]))
    with pytest.raises(GeometryError, match="parallel"):
        measure_room(marks, 2.6, 640, 480)


def test_a_reference_line_of_one_point_is_refused():
    true_size = TrueSize(reference_line=points([(100, 100), (100.2, 100.1)]), line_length=1.0,
                         width=0.6, height=0.9, at=Point(x=50, y=50))
    with pytest.raises(GeometryError, match="same point"):
        true_size_box(true_size, 640, 480)


def test_a_product_too_big_for_the_photo_is_refused():
    room = StraightRoom(Camera())
    wall = room.back_wall_point
    true_size = TrueSize(reference_line=points([wall(0.2, 0.0), wall(3.4, 0.0)]), line_length=3.2,
                         width=6.0, height=0.9, at=points([wall(1.0, 2.0)])[0])
    with pytest.raises(GeometryError, match="outside the photo"):
        true_size_box(true_size, 640, 480)


def test_the_native_api_answers_the_drawing_and_the_measurements_as_json(client, auth, services):
    room = CornerRoom(Camera(yaw=40))
    marks = {"kind": "two_point", "top": [{"x": x, "y": y} for x, y in room.top()],
             "floor": [{"x": x, "y": y} for x, y in room.floor_marks()]}
    body = {"task": "measure", "image": data_uri(png(room.photo()), "image/png"), "room": marks,
            "room_height": room.height}
    job = client.post("/v1/jobs", headers=auth, json=body).json()
    drain(services)
    done = client.get(f"/v1/jobs/{job['id']}", headers=auth).json()
    assert done["status"] == "succeeded"
    drawing, data = done["outputs"]
    assert drawing["kind"] == "image" and (drawing["width"], drawing["height"]) == (640, 480)
    assert data["kind"] == "data" and data["label"] == "measurements"
    found = client.get(data["url"]).json()
    assert close(found["width"], room.width) and close(found["depth"], room.depth)
    # Marks off the photo: refused at submit, with the reason.
    off = {**marks, "top": [{"x": -90, "y": 10}, *marks["top"][1:]]}
    refused = client.post("/v1/jobs", headers=auth, json={**body, "room": off})
    assert refused.status_code == 400
    assert "invalid_geometry" in refused.text and "off the photo" in refused.text
