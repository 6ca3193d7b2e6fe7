"""Spacely's own client examples, unchanged but for the host and key, against a real uvicorn.

Each example submits a standard generation whose imageUrl points at a local HTTP server, polls
until `data.status == "success"` (seeing `processing` first: the engine takes a moment per
image), and every result URL it prints is downloaded.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from PIL import Image

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.services import build_services
from tests.conftest import make_room_photo
from tests.databases import isolated_database
from tests.fakes import AllTasksEngine
from tests.servers import free_port, run_uvicorn, serve_files

EXAMPLES = Path(__file__).parent / "spacely_examples"
SPACELY_HOST = "https://api.spacely.ai"
PHOTO_PLACEHOLDER = "https://example.com/living-room.jpg"
ROOM_SIZE = (320, 240)
# Slow enough that a poller sees "processing" (4 variants ≈ 1.6 s), fast enough for a test.
SECONDS_PER_IMAGE = 0.4


# Each example runs as its own process against a live server.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """roomrender under uvicorn on 127.0.0.1:<random> with one worker, and a photo server."""
    photo = make_room_photo(*ROOM_SIZE)
    with serve_files({"/living-room.jpg": (photo, "image/jpeg")}) as photos, \
            isolated_database() as database_url, pytest.MonkeyPatch.context() as env:
        # The photo lives on 127.0.0.1, which the URL safety rules refuse unless allowed.
        env.setenv("ROOMRENDER_ALLOW_PRIVATE_URLS", "1")
        port = free_port()
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("live") / "data",
            database_url=database_url,
            public_base_url=f"http://127.0.0.1:{port}",
            worker_poll_seconds=0.05, heartbeat_seconds=0.2,
        )
        assert settings.allow_private_urls
        services = build_services(settings, engine=AllTasksEngine(SECONDS_PER_IMAGE))
        key = services.keys.create("spacely client")[1]
        app = create_app(settings, services=services, workers=1, janitor=False)
        with run_uvicorn(app, port) as base:
            yield SimpleNamespace(base=base, key=key, photo_url=f"{photos}/living-room.jpg")
        services.db.dispose()


def example(name: str, live: SimpleNamespace, **more: str) -> str:
    """The example's text with the host, key and photo URL of this test filled in."""
    text = (EXAMPLES / name).read_text()
    assert SPACELY_HOST in text
    text = (text.replace(SPACELY_HOST, live.base).replace("YOUR_API_KEY", live.key)
            .replace(PHOTO_PLACEHOLDER, live.photo_url))
    for placeholder, value in more.items():
        text = text.replace(placeholder, value)
    return text


def check_run(output: str) -> list[str]:
    """The example's printed statuses went processing → success; its result URLs download."""
    statuses = [line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("status:")]
    assert statuses[0] == "processing" and statuses[-1] == "success", output
    assert set(statuses) == {"processing", "success"}, output
    urls = [line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("result:")]
    assert len(urls) == 4, output
    for url in urls:
        download = requests.get(url, timeout=10)
        assert download.status_code == 200 and download.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(download.content)).size == ROOM_SIZE
    return urls


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl command")
def test_curl_example(live, tmp_path):
    submitted = subprocess.run(["bash", "-c", example("generate.sh", live)], capture_output=True,
                               text=True, timeout=30, check=True)
    ref_id = json.loads(submitted.stdout)["data"]

    poll_command = example("poll.sh", live, YOUR_REF_ID=ref_id)
    seen: list[dict[str, object]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        polled = subprocess.run(["bash", "-c", poll_command], capture_output=True, text=True,
                                timeout=30, check=True)
        seen.append(json.loads(polled.stdout)["data"])
        if seen[-1]["status"] == "success":
            break
        time.sleep(0.2)
    assert seen[0]["status"] == "processing" and seen[-1]["status"] == "success", seen
    progress = [data["progress"] for data in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(0 < value < 100 for value in progress), progress  # seen part-way

    for index, url in enumerate(seen[-1]["result"]):
        target = tmp_path / f"result-{index}.png"
        subprocess.run(["curl", "-fsS", "-o", str(target), url], timeout=30, check=True)
        assert Image.open(target).size == ROOM_SIZE
    assert len(seen[-1]["result"]) == 4


def test_python_requests_example(live):
    run = subprocess.run([sys.executable, "-c", example("python_requests.py", live)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    check_run(run.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (18+) for fetch")
def test_browser_fetch_example(live, tmp_path):
    script = tmp_path / "example.mjs"
    script.write_text(example("browser_fetch.mjs", live))
    run = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    check_run(run.stdout)


def _has_axios() -> bool:
    """axios is not a dependency of the project: it is found through NODE_PATH, if set."""
    if shutil.which("node") is None:
        return False
    return subprocess.run(["node", "-e", "require.resolve('axios')"],
                          capture_output=True).returncode == 0


@pytest.mark.skipif(not _has_axios(), reason="needs node and the axios package (NODE_PATH)")
def test_node_axios_example(live, tmp_path):
    script = tmp_path / "example.js"
    script.write_text(example("node_axios.js", live))
    run = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    check_run(run.stdout)
