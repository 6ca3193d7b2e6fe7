"""The native `video` task on the preview engine: a photo in, a room tour out: an MP4 that
browsers play, of the asked length, size and rate, with its poster; cancel stops it mid-clip and
leaves no partial file."""

from __future__ import annotations

import io
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from roomrender.canonical.camera import CAMERA_MOVES, frame_size
from roomrender.canonical.models import GenerationRequest
from roomrender.canonical.tasks import cost_of
from roomrender.engines.base import BatchCanceled, BatchContext, EngineJob, RenderedVideo
from roomrender.engines.clips import prefetched
from roomrender.engines.preview.camera_moves import MOVES, crop_box, frames
from roomrender.engines.preview.engine import PreviewEngine
from roomrender.services import Services
from tests.conftest import data_uri, drain, make_room_photo
from tests.video_files import decode


def photo(width: int = 320, height: int = 240) -> Image.Image:
    return Image.open(io.BytesIO(make_room_photo(width, height, fmt="PNG"))).convert("RGB")


def test_a_native_video_job_is_an_mp4_of_the_asked_length_size_and_rate(
        client: TestClient, auth: dict[str, str], services: Services) -> None:
    submitted = client.post("/v1/jobs", headers=auth, json={
        "task": "video", "image": data_uri(make_room_photo(320, 240)), "camera": "pan_right",
        "duration": 2.5, "fps": 12, "resolution": "480p"})
    assert submitted.status_code == 202, submitted.text
    drain(services)
    job = client.get(f"/v1/jobs/{submitted.json()['id']}", headers=auth).json()
    assert job["status"] == "succeeded", job

    [video] = job["outputs"]
    assert (video["kind"], video["content_type"]) == ("video", "video/mp4")
    assert (video["width"], video["height"], video["fps"]) == (640, 480, 12)
    answer = client.get(video["url"])
    assert answer.headers["content-type"] == "video/mp4"
    clip = decode(answer.content)
    assert (clip.codec, clip.pix_fmt, clip.audio_streams, clip.index_first) == ("h264", "yuv420p", 0, True)
    assert (clip.width, clip.height, clip.fps) == (640, 480, 12)
    assert abs(clip.frames - 2.5 * 12) <= 1
    poster = Image.open(io.BytesIO(client.get(video["poster_url"]).content))
    assert poster.size == (640, 480)


def test_each_camera_move_really_moves_smoothly() -> None:
    still = photo()
    for move in CAMERA_MOVES:
        shots = [np.asarray(frame, np.float32) for frame in frames(still, move, (96, 64), 12)]
        steps = [np.abs(b - a).mean() for a, b in zip(shots, shots[1:], strict=False)]
        assert np.abs(shots[-1] - shots[0]).mean() > 3, move  # the view at the end is another one
        # Eased: it starts and stops slowly, fastest midway.
        assert steps[0] < max(steps) and steps[-1] < max(steps), move


def test_crops_move_by_fractions_of_a_pixel() -> None:
    boxes = [crop_box(MOVES["pan_right"](t / 100), (400, 300), (160, 120)) for t in range(101)]
    lefts = [box[0] for box in boxes]
    assert lefts[0] == 0 and lefts[-1] == pytest.approx(400 - 300 * 4 / 3 / 1.2)
    assert any(0 < left - before < 1 for before, left in zip(lefts, lefts[1:], strict=False))
    assert any(not float(left).is_integer() for left in lefts)


def test_the_frame_keeps_the_photos_shape_at_the_asked_resolution() -> None:
    assert frame_size("720p", 1600, 900) == (1280, 720)
    assert frame_size("1080p", 1920, 1080) == (1920, 1080)
    assert frame_size("1080p", 1000, 1600) == (1080, 1728)  # portrait
    assert frame_size("480p", 1920, 1080) == (856, 480)  # both sides multiples of 8
    assert frame_size("480p", 320, 240) == (640, 480)


def test_a_video_costs_a_credit_a_second() -> None:
    assert cost_of(GenerationRequest(task="video", image="x")) == 5  # the default 5 s
    assert cost_of(GenerationRequest(task="video", image="x", duration=10)) == 10
    assert cost_of(GenerationRequest(task="video", image="x", duration=2.5)) == 3  # started: whole


def test_canceling_mid_clip_stops_it_and_leaves_no_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    reports: list[float] = []
    context = BatchContext(lambda job_id, fraction: reports.append(fraction),
                           lambda job_id: len(reports) >= 5)
    job = EngineJob("tour", GenerationRequest(task="video", image="x", duration=4, fps=8,
                                              resolution="480p"), {"image": photo()})
    with pytest.raises(BatchCanceled):
        PreviewEngine().generate([job], context)
    assert len(reports) == 5 and reports[-1] < 1  # stopped a few frames in, not at the end
    assert list(tmp_path.iterdir()) == []


def test_the_clip_reports_progress_by_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    reports: list[float] = []
    context = BatchContext(lambda job_id, fraction: reports.append(fraction), lambda job_id: False)
    job = EngineJob("tour", GenerationRequest(task="video", image="x", duration=2, fps=8,
                                              resolution="480p", camera="orbit"), {"image": photo()})
    [[video]] = PreviewEngine().generate([job], context)
    assert isinstance(video, RenderedVideo)
    assert reports == [(index + 1) / 16 for index in range(16)]
    assert video.path.parent == tmp_path and decode(video.path.read_bytes()).frames == 16


def test_frames_made_ahead_arrive_in_order_and_stop_with_the_clip() -> None:
    made: list[int] = []

    def numbers() -> Iterator[int]:
        for number in range(100):
            made.append(number)
            yield number

    assert list(prefetched(range(50))) == list(range(50))
    taken = []
    for number in prefetched(numbers(), depth=2):
        taken.append(number)
        if number == 4:
            break  # a cancel: the producer stops within `depth` of where the clip ended
    assert taken == [0, 1, 2, 3, 4] and len(made) <= 5 + 2 + 1
    assert not [t for t in threading.enumerate() if t.name == "clip-frames"]
