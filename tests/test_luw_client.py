"""A Luw.ai client, written the way the official one works (JSON bodies, Bearer auth, polling
/v2/results), run against a real uvicorn server on 127.0.0.1: only the base URL and token differ."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.services import build_services
from tests.conftest import make_room_photo


class LuwClient:
    """The calls a Luw application makes."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})

    def upload(self, path: Path) -> str:
        answer = self.http.post("/v2/upload", json={"filename": path.name}).json()
        assert answer["status"] is True, answer
        # The signed URL carries its own authorisation, like a CDN's.
        put = httpx.put(answer["signed_url"], content=path.read_bytes(),
                        headers={"Content-Type": "image/jpeg"})
        put.raise_for_status()
        return str(answer["final_url"])

    def generate(self, idempotency_key: str | None = None, **params: Any) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.http.post("/v2/generate", json=params, headers=headers).json()  # type: ignore[no-any-return]

    def results(self, processing_url: str) -> dict[str, Any]:
        return self.http.post("/v2/results", json={"processing_url": processing_url}).json()  # type: ignore[no-any-return]

    def wait(self, processing_url: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.results(processing_url)
            if not answer.get("processing"):
                return answer
            time.sleep(0.2)
        raise TimeoutError(f"{processing_url} still processing after {timeout}s")

    def credits(self) -> dict[str, Any]:
        return self.http.get("/v2/credits").json()  # type: ignore[no-any-return]


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[tuple[str, str]]:
    """A real HTTP server on a random port, with one in-process worker: (base URL, token)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(data_dir=tmp_path / "data", public_base_url=base_url,
                        database_url=database_url,
                        worker_poll_seconds=0.05, heartbeat_seconds=0.5)
    services = build_services(settings)
    _, token = services.keys.create("luw-app", credits=10)
    app = create_app(settings, services=services, workers=1, janitor=False)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uvicorn_server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield base_url, token
    finally:
        uvicorn_server.should_exit = True
        thread.join(15)
        sock.close()
        services.db.dispose()


def test_a_luw_application_works_against_roomrender(server, tmp_path):
    base_url, token = server
    luw = LuwClient(base_url, token)
    photo = tmp_path / "x12tmp-room.jpg"
    photo.write_bytes(make_room_photo(320, 240))

    image_url = luw.upload(photo)
    started = luw.generate(idempotency_key="design-1", model="interior", image=image_url,
                           styles="Scandinavian", knows="Living Room", precise=75, format="jpg")
    assert started["status"] is True and started["processing"] is True, started
    repeated = luw.generate(idempotency_key="design-1", model="interior", image=image_url,
                            styles="Scandinavian", knows="Living Room", precise=75, format="jpg")
    assert repeated["status"] is True
    assert repeated.get("processing_url", started["processing_url"]) == started["processing_url"]

    done = luw.wait(started["processing_url"])
    assert done["status"] is True and isinstance(done["output"], str), done
    download = httpx.get(done["output"])
    assert download.status_code == 200 and download.headers["content-type"] == "image/jpeg"
    result = tmp_path / "result.jpg"
    result.write_bytes(download.content)
    assert Image.open(result).size == (320, 240)

    # Charged once for the two identical requests.
    assert luw.credits()["credits"] == {"available": 9, "used": 1, "purchased": 10}


def test_curl_style_form_calls_work_against_roomrender(server, tmp_path):
    base_url, token = server
    auth = {"Authorization": f"Bearer {token}"}
    answer = httpx.post(f"{base_url}/v2/upload", headers=auth, files={"filename": (None, "room.jpg")}).json()
    httpx.put(answer["signed_url"], content=make_room_photo()).raise_for_status()
    started = httpx.post(f"{base_url}/v2/generate", headers=auth,
                         data={"model": "enhance", "image": answer["final_url"], "hd": "2"}).json()
    deadline = time.monotonic() + 60
    while True:
        # curl -X GET .../v2/results -H "Authorization: Bearer ..." -d "processing_url=..."
        polled = httpx.request("GET", f"{base_url}/v2/results", headers={
            **auth, "Content-Type": "application/x-www-form-urlencoded"},
            content=f"processing_url={started['processing_url']}".encode()).json()
        if "output" in polled or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert polled["status"] is True
    upscaled = Image.open(io.BytesIO(httpx.get(polled["output"]).content))
    assert upscaled.size == (640, 480)
