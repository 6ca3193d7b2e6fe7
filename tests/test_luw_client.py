"""A Luw.ai client, written the way the official one works (JSON bodies, Bearer auth, polling
/v2/results), run against a real uvicorn server on 127.0.0.1: only the base URL and token differ."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import make_room_photo
from tests.glb_checks import checked_glb, object_photo
from tests.servers import live_service


class LuwClient:
    """The calls a Luw application makes, as the official client makes them: JSON bodies, Bearer
    auth, the three-step upload, and retries of /upload, /finalize_upload and /results on 429
    and 5xx answers."""

    RETRIED = ("/v2/upload", "/v2/finalize_upload", "/v2/results")

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        self.calls: list[str] = []

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(3):
            self.calls.append(path)
            response = self.http.request(method, path, **kwargs)
            if path in self.RETRIED and (response.status_code == 429 or response.status_code >= 500):
                time.sleep(0.2 * (attempt + 1))
                continue
            return response.json()
        raise RuntimeError(f"{path} kept failing")

    def upload(self, path: Path) -> str:
        answer = self._call("POST", "/v2/upload", files={"filename": (None, path.name), "pid": (None, "p-1")})
        assert answer["status"] is True, answer
        # The signed URL carries its own authorisation, like a CDN's.
        put = httpx.put(answer["signed_url"], content=path.read_bytes(),
                        headers={"Content-Type": "image/jpeg"})
        put.raise_for_status()
        finalized = self._call("GET", "/v2/finalize_upload", params={"url": answer["final_url"]})
        assert finalized == {"status": True}, finalized
        return str(answer["final_url"])

    def generate(self, idempotency_key: str | None = None, **params: Any) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/v2/generate", json=params, headers=headers)  # type: ignore[no-any-return]

    def results(self, processing_url: str) -> dict[str, Any]:
        return self._call("POST", "/v2/results", json={"processing_url": processing_url})  # type: ignore[no-any-return]

    def wait(self, processing_url: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.results(processing_url)
            if not answer.get("processing"):
                return answer
            time.sleep(0.2)
        raise TimeoutError(f"{processing_url} still processing after {timeout}s")

    # Styles and video styles need no key.
    def styles(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.base_url}/v2/styles", params={"version": 2}).json()  # type: ignore[no-any-return]

    def video_styles(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.base_url}/v2/video_styles").json()  # type: ignore[no-any-return]

    def materials(self) -> dict[str, Any]:
        return self._call("GET", "/v2/materials")  # type: ignore[no-any-return]

    def credits(self) -> dict[str, Any]:
        return self._call("GET", "/v2/credits")  # type: ignore[no-any-return]


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[tuple[str, str]]:
    """A real HTTP server on a random port, with one in-process worker: (base URL, token)."""
    with live_service(tmp_path / "data", database_url) as live:
        yield live.base_url, live.token


def test_a_luw_application_works_against_roomrender(server, tmp_path):
    base_url, token = server
    luw = LuwClient(base_url, token)
    photo = tmp_path / "x12tmp-room.jpg"
    photo.write_bytes(make_room_photo(320, 240))

    image_url = luw.upload(photo)  # upload → PUT → finalize
    assert luw.calls == ["/v2/upload", "/v2/finalize_upload"]
    started = luw.generate(idempotency_key="design-1", model="interior", image=image_url,
                           styles="Scandinavian", knows="Living Room", precise=75, format="jpg")
    assert started["status"] is True and started["processing"] is True, started
    repeated = luw.generate(idempotency_key="design-1", model="interior", image=image_url,
                            styles="Scandinavian", knows="Living Room", precise=75, format="jpg")
    assert repeated["status"] is True
    assert repeated.get("processing_url", started["processing_url"]) == started["processing_url"]

    done = luw.wait(started["processing_url"])
    assert done["status"] is True and isinstance(done["output"], str), done
    assert luw.results(started["processing_url"]) == done  # a retried poll answers the same
    download = httpx.get(done["output"])
    assert download.status_code == 200 and download.headers["content-type"] == "image/jpeg"
    result = tmp_path / "result.jpg"
    result.write_bytes(download.content)
    assert Image.open(result).size == (320, 240)

    styles = luw.styles()
    assert "Scandinavian" in [style["name"] for style in styles]
    assert httpx.get(styles[0]["thumb_image"]).headers["content-type"] == "image/png"
    assert "Flythrough Cinematic" in [style["name"] for style in luw.video_styles()]
    materials = luw.materials()
    assert materials["status"] is True and materials["materials"]
    assert {"id", "prompt_type", "title", "extra", "image", "thumb"} <= set(materials["materials"][0])

    # Charged once for the two identical requests.
    assert luw.credits()["credits"] == {"available": 9, "used": 1, "purchased": 10}


def test_a_luw_application_removes_a_background(server, tmp_path):
    base_url, token = server
    luw = LuwClient(base_url, token)
    product = Image.new("RGB", (160, 120), (248, 248, 246))
    product.paste((40, 70, 160), (40, 30, 120, 100))
    path = tmp_path / "lamp.png"
    product.save(path)

    started = luw.generate(model="removebg", image=luw.upload(path))
    done = luw.wait(started["processing_url"])
    assert done["status"] is True, done
    cut = Image.open(io.BytesIO(httpx.get(done["output"]).content))
    assert cut.mode == "RGBA" and cut.getpixel((5, 5))[3] == 0 and cut.getpixel((80, 60))[3] == 255


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


def test_a_luw_application_turns_a_product_photo_into_a_textured_3d_model(server, tmp_path):
    base_url, token = server
    luw = LuwClient(base_url, token)
    front, side = tmp_path / "vase-front.png", tmp_path / "vase-side.png"
    front.write_bytes(object_photo((200, 100)))
    side.write_bytes(object_photo((100, 200)))

    started = luw.generate(model="3dgen", image=luw.upload(front), extra_image_1=luw.upload(side),
                           texture=True, simplify=12, reflect=True, seed=7)
    done = luw.wait(started["processing_url"])
    assert done["status"] is True and isinstance(done["output"], str), done
    download = httpx.get(done["output"])
    assert download.headers["content-type"] == "model/gltf-binary"
    mesh = checked_glb(download.content, max_faces=12)
    assert mesh.visual.material.roughnessFactor < 0.5  # reflect: a glossy finish
    width, height, _ = mesh.extents
    assert width == pytest.approx(2 * height)  # the card keeps the photo's aspect ratio
    assert luw.credits()["credits"]["used"] == 3
