"""A Spacely client placing a product into a room, against a real uvicorn on 127.0.0.1 running the
preview engine: only the host and key differ from a client of Spacely's own service."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.services import build_services
from tests.conftest import make_room_photo
from tests.databases import isolated_database
from tests.servers import free_port, run_uvicorn, serve_files

ROOM = make_room_photo(400, 300, fmt="PNG")
SOFA_GREEN = (40, 120, 70)


def product_photo() -> bytes:
    """A green sofa-like block on a white studio background, 100x50 of it visible."""
    photo = Image.new("RGB", (160, 100), (252, 252, 250))
    photo.paste(SOFA_GREEN, (30, 25, 130, 75))
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    return buffer.getvalue()


class SpacelyClient:
    """The calls a Spacely Enterprise application makes."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30, headers={"X-API-KEY": api_key})

    def furniture_placement(self, room_url: str, product_url: str, placement: dict[str, float],
                            area: dict[str, float]) -> str:
        response = self.http.post("/api/v1/generate/furniture-placement", json={
            "imageUrl": room_url, "productImageUrl": product_url, "placement": placement, "area": area})
        assert response.status_code == 200, response.text
        return str(response.json()["data"])

    def poll(self, ref_id: str, timeout: float = 60.0) -> tuple[list[str], dict[str, Any]]:
        """Every status seen, and the last answer's data."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.http.get("/api/v1/generate/poll-result", params={"refId": ref_id})
            assert response.status_code == 200, response.text
            data = response.json()["data"]
            seen.append(data["status"])
            if data["status"] in ("success", "failed"):
                return seen, data
            time.sleep(0.1)
        raise TimeoutError(f"{ref_id} still processing after {timeout}s")

    def resources(self) -> dict[str, Any]:
        return self.http.get("/api/v1/resources").json()["data"]  # type: ignore[no-any-return]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[SpacelyClient, str, str]]:
    files = {"/room.png": (ROOM, "image/png"), "/sofa.png": (product_photo(), "image/png")}
    with serve_files(files) as photos, isolated_database() as database_url:
        port = free_port()
        settings = Settings(data_dir=tmp_path / "data", database_url=database_url,
                            public_base_url=f"http://127.0.0.1:{port}", allow_private_urls=True,
                            worker_poll_seconds=0.05, heartbeat_seconds=0.5)
        services = build_services(settings)
        key = services.keys.create("spacely client", credits=5)[1]
        app = create_app(settings, services=services, workers=1, janitor=False)
        with run_uvicorn(app, port) as base:
            yield SpacelyClient(base, key), f"{photos}/room.png", f"{photos}/sofa.png"
        services.db.dispose()


def test_a_spacely_client_places_furniture_and_downloads_every_result(live):
    spacely, room_url, sofa_url = live
    endpoints = {e["path"]: e["supported"] for e in spacely.resources()["endpoints"]}
    assert endpoints["/api/v1/generate/furniture-placement"] is True

    ref_id = spacely.furniture_placement(room_url, sofa_url,
                                         placement={"x": 150, "y": 170, "w": 160, "h": 80},
                                         area={"x": 120, "y": 140, "w": 220, "h": 150})
    statuses, data = spacely.poll(ref_id)
    assert statuses[-1] == "success" and set(statuses) <= {"processing", "success"}, statuses
    assert data["progress"] == 100 and data["result"]

    room = np.asarray(Image.open(io.BytesIO(ROOM)).convert("RGB"), np.int32)
    for url in data["result"]:
        download = httpx.get(url, timeout=10)
        assert download.status_code == 200 and download.headers["content-type"] == "image/png"
        placed = np.asarray(Image.open(io.BytesIO(download.content)).convert("RGB"), np.int32)
        assert placed.shape == room.shape
        assert np.abs(placed[175:245, 155:305] - SOFA_GREEN).max() <= 30
        outside = np.ones(room.shape[:2], dtype=bool)
        outside[140:290, 120:340] = False
        assert np.array_equal(placed[outside], room[outside])
