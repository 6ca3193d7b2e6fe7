"""A room tour asked for the other ways a client can: Replicate's `roomrender/video` model and
`roomrender submit --task video ... --wait`, which saves the MP4."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from roomrender.app import create_app
from roomrender.cli import app
from roomrender.config import Settings
from roomrender.services import Services, build_services
from tests.conftest import data_uri, drain, make_room_photo
from tests.servers import free_port, run_uvicorn
from tests.video_files import decode


def test_replicates_roomrender_video_model_answers_an_mp4_url(client: TestClient, auth: dict[str, str],
                                                              services: Services) -> None:
    model = client.get("/v1/models/roomrender/video", headers=auth).json()
    properties = model["latest_version"]["openapi_schema"]["components"]["schemas"]["Input"]["properties"]
    assert {"camera", "duration", "fps", "resolution"} <= set(properties)
    created = client.post("/v1/models/roomrender/video/predictions", headers=auth, json={"input": {
        "image": data_uri(make_room_photo(320, 240)), "camera": "tilt_up", "duration": 2, "fps": 8,
        "resolution": "480p"}})
    assert created.status_code == 201, created.text
    drain(services)
    prediction = client.get(f"/v1/predictions/{created.json()['id']}", headers=auth).json()
    assert prediction["status"] == "succeeded", prediction
    clip = decode(client.get(prediction["output"]).content)
    assert (clip.width, clip.height, clip.fps, clip.codec) == (640, 480, 8, "h264")
    assert abs(clip.frames - 16) <= 1


def test_submit_saves_the_tour_as_an_mp4(tmp_path: Path, settings: Settings) -> None:
    port = free_port()
    settings = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}",
                                           "worker_poll_seconds": 0.05})
    services = build_services(settings)
    key = services.keys.create("cli")[1]
    room = tmp_path / "room.jpg"
    room.write_bytes(make_room_photo(320, 240))
    out = tmp_path / "out"
    with run_uvicorn(create_app(settings, services=services, workers=1, janitor=False), port) as base:
        answer = CliRunner().invoke(app, [
            "submit", str(room), "--task", "video", "--camera", "orbit", "--duration", "2",
            "--fps", "10", "--resolution", "480p", "--wait", "--out", str(out), "--server", base,
            "--key", key])
    services.db.dispose()
    assert answer.exit_code == 0, answer.output
    [saved] = list(out.iterdir())
    assert saved.suffix == ".mp4"
    clip = decode(saved.read_bytes())
    assert (clip.width, clip.height, clip.fps, clip.frames) == (640, 480, 10, 20)
