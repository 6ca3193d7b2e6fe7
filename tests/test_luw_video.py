"""Luw's video generators, `video` and `motion`, as a Luw application calls them: /v2/generate,
then /v2/results until `output` is an MP4 URL; the clip decodes to what was asked. A clip costs
Luw's credits a clip; /v2/video_styles lists the camera moves this server renders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.services import build_services
from tests.conftest import data_uri, make_room_photo
from tests.servers import free_port, run_uvicorn
from tests.test_luw_client import LuwClient
from tests.video_files import decode


@pytest.fixture
def luw(tmp_path: Path, database_url: str) -> Iterator[LuwClient]:
    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", public_base_url=f"http://127.0.0.1:{port}",
                        database_url=database_url, worker_poll_seconds=0.05, luw_video_credits=7)
    services = build_services(settings)
    _, token = services.keys.create("luw-tours", credits=20)
    app = create_app(settings, services=services, workers=1, janitor=False)
    try:
        with run_uvicorn(app, port) as base_url:
            yield LuwClient(base_url, token)
    finally:
        services.db.dispose()


def test_video_and_motion_answer_mp4s_of_the_asked_length_size_and_rate(luw: LuwClient) -> None:
    room = data_uri(make_room_photo(320, 240))
    styles = luw.video_styles()
    assert "Flythrough Cinematic" in [style["name"] for style in styles]

    tour = luw.generate(model="video", image=room, styles="Flythrough Cinematic", seed=3,
                        enhance_prompt=True, prompt="a sunlit living room",
                        duration=2, fps=10, resolution="480p")
    motion = luw.generate(model="motion", image=room, duration="3", fps="8", resolution="480p")
    for started in (tour, motion):
        assert started["status"] is True and started["processing"] is True, started
    # Luw's price: a clip costs the configured credits, whatever its length.
    assert luw.credits()["credits"]["available"] == 20 - 2 * 7

    for started, seconds, fps in ((tour, 2, 10), (motion, 3, 8)):
        done = luw.wait(started["processing_url"])
        assert done["status"] is True and isinstance(done["output"], str), done
        download = httpx.get(done["output"])
        assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
        clip = decode(download.content)
        assert (clip.codec, clip.pix_fmt, clip.audio_streams) == ("h264", "yuv420p", 0)
        assert (clip.width, clip.height, clip.fps) == (640, 480, fps)
        assert abs(clip.frames - seconds * fps) <= 1


def test_an_unknown_video_style_is_refused_with_the_names_accepted(luw: LuwClient) -> None:
    answer = luw.generate(model="video", image=data_uri(make_room_photo(64, 48)), styles="Barrel Roll")
    assert answer["status"] is False
    assert "unknown video style 'Barrel Roll'" in answer["error"] and "Flythrough Cinematic" in answer["error"]
    assert luw.credits()["credits"]["available"] == 20
