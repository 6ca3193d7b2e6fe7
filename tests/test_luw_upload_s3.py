"""Luw's three-step upload (POST /v2/upload → PUT to the signed URL → finalize_upload), then a
generation with the final_url as its image, run by a Luw-style client against a real server: on
S3 storage (moto's S3 server on 127.0.0.1) exactly as on local files. The final_url is the
storage's own URL of the file, so the server takes it as its own file instead of fetching it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import make_room_photo
from tests.servers import live_service
from tests.test_luw_client import LuwClient


def _storage_url(kind: str, request: pytest.FixtureRequest) -> str:
    """`""` (local files under the data folder) or a fresh bucket on moto's S3 server, which
    boto3 reaches through the usual AWS settings, as a deployment's would."""
    if kind == "local":
        return ""
    return f"s3://{request.getfixturevalue('s3_bucket')}/luw"


@pytest.fixture(params=["local", "s3"])
def server(request: pytest.FixtureRequest, tmp_path: Path,
           database_url: str) -> Iterator[tuple[str, str, str]]:
    """A real HTTP server with one in-process worker: (base URL, token, storage URL)."""
    storage_url = _storage_url(request.param, request)
    with live_service(tmp_path / "data", database_url, storage_url=storage_url) as live:
        yield live.base_url, live.token, storage_url


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
