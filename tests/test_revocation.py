"""A revoked key is refused at once, and its open event streams (native and Replicate) close at
once, in this API process and in others (issue 24, finding 6)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from roomrender.app import create_app
from tests.conftest import data_uri
from tests.servers import free_port, run_uvicorn

ROOT = Path(__file__).resolve().parents[1]


def read_to_end(lines: Iterator[str], into: list[str], ended: threading.Event) -> None:
    try:
        for line in lines:
            into.append(line)
    except httpx.HTTPError:  # the stream broke rather than ended
        pass
    ended.set()


def follow(client: httpx.Client, path: str, bearer: dict[str, str]
           ) -> tuple[httpx.Response, list[str], threading.Event]:
    """A stream read in the background, line by line, once its first event came."""
    response = client.send(client.build_request("GET", path, headers=bearer), stream=True)
    assert response.status_code == 200, response.read()
    lines = response.iter_lines()
    seen = [next(lines)]
    while seen[-1]:
        seen.append(next(lines))
    ended = threading.Event()
    threading.Thread(target=read_to_end, args=(lines, seen, ended), daemon=True).start()
    return response, seen, ended


def test_a_revoked_key_is_refused_and_its_open_streams_close_at_once(services, room_jpeg):
    app = create_app(services.settings, services=services, workers=0, janitor=False,
                     webhooks=False)
    key, plaintext = services.keys.create("leaving")
    bearer = {"Authorization": f"Bearer {plaintext}"}
    other = {"Authorization": f"Bearer {services.keys.create('staying')[1]}"}
    with run_uvicorn(app, free_port()) as base, httpx.Client(base_url=base, timeout=60) as client:
        job = client.post("/v1/jobs", headers=bearer, json={
            "task": "restyle", "image": data_uri(room_jpeg)}).json()
        prediction = client.post("/v1/models/roomrender/restyle/predictions", headers=bearer,
                                 json={"input": {"image": data_uri(room_jpeg)}}).json()
        others = client.post("/v1/jobs", headers=other, json={
            "task": "restyle", "image": data_uri(room_jpeg)}).json()
        native = follow(client, f"/v1/jobs/{job['id']}/events", bearer)
        replicate = follow(client, f"/v1/predictions/{prediction['id']}/stream", bearer)
        staying = follow(client, f"/v1/jobs/{others['id']}/events", other)
        assert client.get(f"/v1/jobs/{job['id']}", headers=bearer).status_code == 200  # cached

        revoked_at = time.monotonic()
        services.keys.revoke(key.id)
        assert client.get(f"/v1/jobs/{job['id']}", headers=bearer).status_code == 401
        assert native[2].wait(2) and replicate[2].wait(2)
        assert time.monotonic() - revoked_at < 1.0
        for _response, seen, _ended in (native, replicate):
            assert ": the API key of this stream was revoked" in seen
        # Another key's stream goes on, and its key still works.
        assert not staying[2].is_set()
        assert client.get(f"/v1/jobs/{others['id']}", headers=other).status_code == 200
        for response, _seen, _ended in (native, replicate, staying):
            response.close()


@pytest.mark.slow
def test_a_key_revoked_by_another_process_closes_this_ones_streams(services, room_jpeg):
    """`roomrender keys revoke` in its own process, the API here, on one SQLite file."""
    app = create_app(services.settings, services=services, workers=0, janitor=False,
                     webhooks=False)
    key, plaintext = services.keys.create("leaving")
    bearer = {"Authorization": f"Bearer {plaintext}"}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
           "ROOMRENDER_DATA_DIR": str(services.settings.data_dir),
           "ROOMRENDER_DATABASE_URL": services.settings.database_url}
    with run_uvicorn(app, free_port()) as base, httpx.Client(base_url=base, timeout=60) as client:
        job = client.post("/v1/jobs", headers=bearer, json={
            "task": "restyle", "image": data_uri(room_jpeg)}).json()
        native = follow(client, f"/v1/jobs/{job['id']}/events", bearer)
        revoked = subprocess.run([sys.executable, "-m", "roomrender.cli", "keys", "revoke",
                                  key.id], cwd=ROOT, env=env, capture_output=True, timeout=120)
        assert revoked.returncode == 0, revoked.stderr
        exited = time.monotonic()
        # The feed's safety poll (1 s) hears it, though the revoking process is gone already.
        assert native[2].wait(3), "the revoked key's stream stayed open"
        assert ": the API key of this stream was revoked" in native[1], native[1]
        assert client.get(f"/v1/jobs/{job['id']}", headers=bearer).status_code == 401
        assert time.monotonic() - exited < 3
        native[0].close()
