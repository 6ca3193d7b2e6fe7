"""Luw's three-step upload (POST /v2/upload → PUT to the signed URL → finalize_upload), then a
generation with the final_url as its image, run by a Luw-style client against a real server: on
S3 storage (moto's S3 server on 127.0.0.1) exactly as on local files. The final_url is the
storage's own URL of the file, so the server takes it as its own file instead of fetching it."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
import uvicorn
from PIL import Image

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.services import build_services
from tests.conftest import make_room_photo
from tests.test_luw_client import LuwClient


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _storage_url(kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """`""` (local files under the data folder) or a fresh bucket on moto's S3 server, which
    boto3 reaches through the usual AWS settings, as a deployment's would."""
    if kind == "local":
        return ""
    endpoint = request.getfixturevalue("s3_endpoint")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"rr-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/luw"


@pytest.fixture(params=["local", "s3"])
def server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
           database_url: str) -> Iterator[tuple[str, str, str]]:
    """A real HTTP server with one in-process worker: (base URL, token, storage URL)."""
    storage_url = _storage_url(request.param, request, monkeypatch)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(data_dir=tmp_path / "data", public_base_url=base_url,
                        database_url=database_url, storage_url=storage_url,
                        worker_poll_seconds=0.05, heartbeat_seconds=0.5)
    services = build_services(settings)
    _, token = services.keys.create("luw-app", credits=10)
    app = create_app(settings, services=services, workers=1, janitor=False)
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uvicorn_server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield base_url, token, storage_url
    finally:
        uvicorn_server.should_exit = True
        thread.join(15)
        sock.close()
        services.db.dispose()


def test_an_uploads_final_url_generates_on_every_storage(server, tmp_path):
    base_url, token, storage_url = server
    luw = LuwClient(base_url, token)
    photo = tmp_path / "room.jpg"
    photo.write_bytes(make_room_photo(320, 240))

    final_url = luw.upload(photo)  # upload → PUT → finalize
    assert luw.calls == ["/v2/upload", "/v2/finalize_upload"]
    # The final URL is where the store serves the file: this server's /files/ on local files,
    # the bucket itself on S3.
    if storage_url:
        assert final_url.split("?")[0].endswith("-room.jpg") and not final_url.startswith(base_url)
    else:
        assert final_url.startswith(f"{base_url}/files/") and final_url.endswith("-room.jpg")
    stored = httpx.get(final_url)
    assert stored.status_code == 200 and stored.content == photo.read_bytes()

    started = luw.generate(model="interior", image=final_url, styles="Scandinavian",
                           knows="Living Room")
    assert started["status"] is True and started["processing"] is True, started
    done = luw.wait(started["processing_url"])
    assert done["status"] is True and isinstance(done["output"], str), done
    result = tmp_path / "result.png"
    result.write_bytes(httpx.get(done["output"]).content)
    assert Image.open(result).size == (320, 240)
    # Charged once, and the input was the upload itself (no second copy fetched).
    assert luw.credits()["credits"]["used"] == 1


def test_finalize_upload_refuses_an_unknown_url_and_waits_for_the_bytes(server):
    base_url, token, _ = server
    auth = {"Authorization": f"Bearer {token}"}
    answer = httpx.post(f"{base_url}/v2/upload", headers=auth,
                        files={"filename": (None, "room.jpg")}).json()
    early = httpx.get(f"{base_url}/v2/finalize_upload", headers=auth,
                      params={"url": answer["final_url"]})
    assert early.status_code == 400 and early.json()["status"] is False
    stranger = httpx.get(f"{base_url}/v2/finalize_upload", headers=auth,
                         params={"url": "https://example.com/room.jpg"})
    assert stranger.status_code == 404 and stranger.json()["status"] is False
    httpx.put(answer["signed_url"], content=make_room_photo()).raise_for_status()
    finalized = httpx.get(f"{base_url}/v2/finalize_upload", headers=auth,
                          params={"url": answer["final_url"]})
    assert finalized.json() == {"status": True}
