"""Spacely's precision tools against the real app on the preview engine: decoration placement at
true size and the one- and two-point perspective measurements (submit, poll, result image), and
marks that make no room answered 400 in Spacely's shape."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from roomrender.config import Settings
from tests.api.test_spacely import assert_error, job_of, poll, submit
from tests.conftest import drain
from tests.servers import serve_files
from tests.synthetic_rooms import Camera, CornerRoom, Pixel, StraightRoom, box_of, png

CORNER = CornerRoom(Camera(yaw=40))
STRAIGHT = StraightRoom(Camera())
RED = (200, 30, 30)


def frame_png() -> bytes:
    """A 60 x 90 frame's PNG, no background: a red board, 2:3."""
    return png(Image.new("RGBA", (120, 180), (*RED, 255)))


@pytest.fixture(scope="module")
def photos() -> Iterator[SimpleNamespace]:
    files = {"/corner.png": (png(CORNER.photo()), "image/png"),
             "/straight.png": (png(STRAIGHT.photo()), "image/png"),
             "/frame.png": (frame_png(), "image/png")}
    with serve_files(files) as base:
        yield SimpleNamespace(corner=f"{base}/corner.png", straight=f"{base}/straight.png",
                              frame=f"{base}/frame.png")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"allow_private_urls": True})


@pytest.fixture
def key(api_key: str) -> dict[str, str]:
    return {"X-API-KEY": api_key}


def xy(points: list[Pixel]) -> list[dict[str, float]]:
    return [{"x": round(x, 1), "y": round(y, 1)} for x, y in points]


def two_point_body(photos: SimpleNamespace) -> dict[str, object]:
    return {"imageUrl": photos.corner, "topCornerLine": xy(CORNER.top()),
            "bottomCornerReferenceLine": xy(CORNER.floor_marks()), "roomHeight": CORNER.height}


def one_point_body(photos: SimpleNamespace) -> dict[str, object]:
    lines = STRAIGHT.lines()
    return {"imageUrl": photos.straight, "topLeftLine": xy(lines["top_left"]),
            "topRightLine": xy(lines["top_right"]), "bottomLeftLine": xy(lines["bottom_left"]),
            "bottomRightLine": xy(lines["bottom_right"]), "roomHeight": STRAIGHT.height}


def finished(client, key, services, ref_id):  # type: ignore[no-untyped-def]
    drain(services)
    data = poll(client, key, ref_id)
    assert data["status"] == "success", data.get("message")
    return data


def measurements(client, data) -> dict[str, object]:  # type: ignore[no-untyped-def]
    [image_url, json_url] = data["result"]
    drawing = Image.open(io.BytesIO(client.get(image_url).content))
    assert drawing.format == "PNG" and drawing.size == (640, 480)
    response = client.get(json_url)
    assert response.headers["content-type"].startswith("application/json")
    return dict(json.loads(response.content))


def test_two_point_perspective_measures_the_walls(client, key, services, photos, api_key):
    ref_id = submit(client, key, "two-point-perspective", two_point_body(photos))
    data = finished(client, key, services, ref_id)
    found = measurements(client, data)
    assert found["perspective"] == "two_point"
    assert abs(found["width"] - CORNER.width) <= 0.03 * CORNER.width
    assert abs(found["depth"] - CORNER.depth) <= 0.03 * CORNER.depth
    job = job_of(services, api_key, ref_id)
    assert job.task.value == "measure" and job.cost == 1 and job.request.room_height == CORNER.height


@pytest.mark.parametrize("path", ["one-point-perspective", "two-point-perspective"])
def test_one_point_perspective_measures_the_room_at_either_path(client, key, services, photos, path):
    ref_id = submit(client, key, path, one_point_body(photos))
    found = measurements(client, finished(client, key, services, ref_id))
    assert found["perspective"] == "one_point"
    assert abs(found["width"] - STRAIGHT.width) <= 0.03 * STRAIGHT.width
    assert abs(found["depth"] - STRAIGHT.depth) <= 0.03 * STRAIGHT.depth


def test_decoration_placement_hangs_the_frame_at_its_true_size(client, key, services, photos, api_key):
    wall = CORNER.left_wall_point
    frame = [wall(1.0, 2.0), wall(1.6, 2.0), wall(1.6, 1.1), wall(1.0, 1.1)]
    body = {"imageUrl": photos.corner, "productImageUrl": photos.frame,
            "productWidth": 60, "productHeight": 90, "lineLength": 300,
            "referenceLine": xy([wall(0.5, 1.0), wall(3.5, 1.0)]),
            "placement": {**xy(frame[:1])[0], "w": 10, "h": 10}}
    ref_id = submit(client, key, "decoration-placement", body)
    data = finished(client, key, services, ref_id)
    [url] = data["result"]
    placed = np.asarray(Image.open(io.BytesIO(client.get(url).content)).convert("RGB"), dtype=np.int32)
    red = (placed[..., 0] > 150) & (placed[..., 1] < 90) & (placed[..., 2] < 90)
    rows, columns = np.nonzero(red)
    expected_w, expected_h = box_of(frame)
    assert abs(columns.max() - columns.min() + 1 - expected_w) <= 0.03 * expected_w
    assert abs(rows.max() - rows.min() + 1 - expected_h) <= 0.03 * expected_h
    job = job_of(services, api_key, ref_id)
    assert job.task.value == "place" and job.request.true_size.line_length == 300
    # The placement the true size set: where the frame is.
    assert abs(job.request.placement.w - expected_w) <= 2 and abs(job.request.placement.h - expected_h) <= 2


def test_decoration_placement_on_a_straight_room_back_wall(client, key, services, photos):
    wall = STRAIGHT.back_wall_point
    frame = [wall(1.5, 2.0), wall(2.1, 1.1)]
    body = {"imageUrl": photos.straight, "productImageUrl": photos.frame,
            "productWidth": 0.6, "productHeight": 0.9, "lineLength": 3.2,
            "referenceLine": xy([wall(0.2, 0.0), wall(3.4, 0.0)]), "placement": xy(frame[:1])[0]}
    data = finished(client, key, services, submit(client, key, "decoration-placement", body))
    placed = np.asarray(Image.open(io.BytesIO(client.get(data["result"][0]).content)).convert("RGB"),
                        dtype=np.int32)
    rows, columns = np.nonzero((placed[..., 0] > 150) & (placed[..., 1] < 90) & (placed[..., 2] < 90))
    expected_w, expected_h = box_of(frame)
    assert abs(columns.max() - columns.min() + 1 - expected_w) <= max(0.03 * expected_w, 1.5)
    assert abs(rows.max() - rows.min() + 1 - expected_h) <= max(0.03 * expected_h, 1.5)


# -- bad geometry: 400 with a message, never a 500 ---------------------------------------

def parallel_two_point(photos: SimpleNamespace) -> dict[str, object]:
    return {**two_point_body(photos),
            "topCornerLine": xy([(100, 100), (300, 150), (500, 100)]),
            "bottomCornerReferenceLine": xy([(100, 300), (300, 350), (500, 300)])}


def off_photo_one_point(photos: SimpleNamespace) -> dict[str, object]:
    body = one_point_body(photos)
    body["topLeftLine"] = [{"x": 210, "y": 166}, {"x": -400, "y": 20}]
    return body


def frame_body(photos: SimpleNamespace, **changes: object) -> dict[str, object]:
    wall = STRAIGHT.back_wall_point
    body: dict[str, object] = {"imageUrl": photos.straight, "productImageUrl": photos.frame,
                               "productWidth": 0.6, "productHeight": 0.9, "lineLength": 3.2,
                               "referenceLine": xy([wall(0.2, 0.0), wall(3.4, 0.0)]),
                               "placement": xy([wall(1.5, 2.0)])[0]}
    body.update(changes)
    return body


@pytest.mark.parametrize("path,make,code,words", [
    ("two-point-perspective", parallel_two_point, "invalid_geometry", ["parallel", "vanishing point"]),
    ("two-point-perspective", off_photo_one_point, "invalid_geometry", ["off the photo", "640x480"]),
    ("one-point-perspective", off_photo_one_point, "invalid_geometry", ["off the photo"]),
    ("two-point-perspective", lambda p: {**two_point_body(p), "roomHeight": -2}, "invalid_request",
     ["roomHeight"]),
    ("two-point-perspective", lambda p: {**two_point_body(p), "topCornerLine": xy([(1, 2)])},
     "invalid_request", ["topCornerLine"]),
    ("two-point-perspective", lambda p: {"imageUrl": p.corner}, "invalid_request", ["topCornerLine"]),
    ("decoration-placement", lambda p: frame_body(p, referenceLine=xy([(300, 300), (300.2, 300)])),
     "invalid_geometry", ["same point"]),
    ("decoration-placement", lambda p: frame_body(p, productWidth=9.0), "invalid_geometry",
     ["outside the photo"]),
    ("decoration-placement", lambda p: frame_body(p, placement={"x": 900, "y": 10}), "invalid_geometry",
     ["off the photo"]),
    ("decoration-placement", lambda p: frame_body(p, lineLength=0), "invalid_request", ["lineLength"]),
])
def test_marks_that_make_no_room_are_answered_400(client, key, services, photos, path, make, code, words):
    response = client.post(f"/api/v1/generate/{path}", headers=key, json=make(photos))
    assert_error(response, 400, code, *words)
    assert drain(services) == 0


def test_resources_list_the_precision_endpoints_as_served(client):
    endpoints = {item["path"]: item["supported"]
                 for item in client.get("/api/v1/resources").json()["data"]["endpoints"]}
    assert endpoints["/api/v1/generate/decoration-placement"] is True
    assert endpoints["/api/v1/generate/two-point-perspective"] is True
    assert endpoints["/api/v1/generate/one-point-perspective"] is True
