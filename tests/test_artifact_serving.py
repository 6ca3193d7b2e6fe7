"""Artifacts of every kind, as a client sees them: an engine returns a drawing with a script in
it, a video, a mesh, data and text; the native job lists them typed, and /files/ serves each
with its content type, never sniffed, the drawing sandboxed and the video by ranges."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from roomrender.app import create_app
from roomrender.canonical.models import GenerationRequest, Task
from roomrender.config import Settings
from roomrender.engines.base import (
    BatchContext,
    EngineJob,
    JobResult,
    RenderedData,
    RenderedMesh,
    RenderedText,
    RenderedVector,
    RenderedVideo,
)
from roomrender.services import Services, build_services
from tests.conftest import BASE_URL, drain

av = pytest.importorskip("av", reason="PyAV writes the test's MP4 (the dev extra)")

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30">'
       '<rect width="40" height="30" fill="#a3b18a"/><script>fetch("/v1/jobs")</script></svg>')
VIDEO_SIZE = (64, 48)
FPS = 12
FRAMES = 24


def glb() -> bytes:
    """The smallest valid binary glTF 2.0: a header and one JSON chunk, padded to 4 bytes."""
    document = json.dumps({"asset": {"version": "2.0"}}).encode()
    document += b" " * (-len(document) % 4)
    chunk = struct.pack("<II", len(document), 0x4E4F534A) + document
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunk)) + chunk


def write_video(path: Path) -> Image.Image:
    """A moving gradient written to `path` as MP4 one frame at a time, as an engine streams its
    frames to an encoder; its first frame is the poster."""
    width, height = VIDEO_SIZE
    poster: Image.Image | None = None
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(FRAMES):
            pixels = np.zeros((height, width, 3), dtype=np.uint8)
            pixels[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
            pixels[:, :, 1] = index * 255 // FRAMES
            if poster is None:
                poster = Image.fromarray(pixels)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert poster is not None
    return poster


class ArtifactsEngine:
    """Answers every job with one artifact of each kind but images; records the video files it
    handed over."""

    name = "artifacts"
    max_batch_images = 4

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.videos: list[Path] = []

    def supported_tasks(self) -> frozenset[Task]:
        return frozenset({Task.text_to_image})

    def validate(self, request: GenerationRequest) -> None:
        return None

    def batch_key(self, request: GenerationRequest, width: int | None, height: int | None) -> str:
        return self.name

    def warm_up(self) -> None:
        return None

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        results: list[JobResult] = []
        for job in batch:
            path = self.scratch / f"{job.job_id}.mp4"
            poster = write_video(path)
            self.videos.append(path)
            results.append([
                RenderedVector(SVG, width=40, height=30),
                RenderedVideo(path, poster, fps=FPS, duration_seconds=FRAMES / FPS,
                              width=VIDEO_SIZE[0], height=VIDEO_SIZE[1]),
                RenderedMesh(glb()),
                RenderedData({"rooms": [{"name": "living", "area_m2": 21.5}]}, label="layout"),
                RenderedText(f"A room for {job.request.prompt}, façade included."),
            ])
        return results


@pytest.fixture
def engine(tmp_path: Path) -> ArtifactsEngine:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return ArtifactsEngine(scratch)


@pytest.fixture
def artifact_services(settings: Settings, engine: ArtifactsEngine) -> Iterator[Services]:
    built = build_services(settings, engine=engine)
    yield built
    built.db.dispose()


@pytest.fixture
def artifact_client(artifact_services: Services) -> Iterator[TestClient]:
    app = create_app(artifact_services.settings, services=artifact_services, workers=0, janitor=False)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


def run_job(client: TestClient, services: Services) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {services.keys.create('artifacts')[1]}"}
    submitted = client.post("/v1/jobs", headers=auth, json={"task": "text_to_image", "prompt": "a loft"})
    assert submitted.status_code == 202, submitted.text
    drain(services)
    job: dict[str, Any] = client.get(f"/v1/jobs/{submitted.json()['id']}", headers=auth).json()
    assert job["status"] == "succeeded", job
    return job


def key_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_the_native_job_lists_typed_outputs(artifact_client: TestClient, artifact_services: Services,
                                            engine: ArtifactsEngine) -> None:
    outputs = run_job(artifact_client, artifact_services)["outputs"]

    assert [(o["kind"], o["content_type"]) for o in outputs] == [
        ("vector", "image/svg+xml"), ("video", "video/mp4"), ("mesh", "model/gltf-binary"),
        ("data", "application/json"), ("text", "text/plain; charset=utf-8")]
    vector, video, mesh, data, text = outputs
    assert (vector["width"], vector["height"]) == (40, 30)
    assert vector["size_bytes"] == len(SVG.encode())
    assert (video["width"], video["height"]) == VIDEO_SIZE
    assert video["duration_seconds"] == FRAMES / FPS and video["fps"] == FPS
    assert video["poster_url"].startswith(f"{BASE_URL}/files/out-")
    assert mesh["size_bytes"] == len(glb()) and "width" not in mesh
    assert data["label"] == "layout"
    for output in outputs:
        assert output["url"].startswith(f"{BASE_URL}/files/out-")
        downloaded = artifact_client.get(output["url"])
        assert downloaded.status_code == 200
        assert output["size_bytes"] == len(downloaded.content)
    # The engine's video file was stored, then deleted: nothing piles up in its scratch folder.
    assert engine.videos and not any(path.exists() for path in engine.videos)


def test_each_file_is_served_with_its_content_type_and_never_sniffed(
        artifact_client: TestClient, artifact_services: Services) -> None:
    vector, video, mesh, data, text = run_job(artifact_client, artifact_services)["outputs"]

    drawing = artifact_client.get(vector["url"])
    assert drawing.headers["content-type"] == "image/svg+xml"
    assert drawing.text == SVG
    # The script inside the drawing cannot run: the answer is a sandbox with no script source.
    policy = drawing.headers["content-security-policy"]
    assert "sandbox" in policy.split(";")[0] and "default-src 'none'" in policy
    assert "script-src" not in policy

    model = artifact_client.get(mesh["url"])
    assert model.headers["content-type"] == "model/gltf-binary"
    assert model.content[:4] == b"glTF" and struct.unpack("<I", model.content[8:12])[0] == len(model.content)
    document = artifact_client.get(data["url"])
    assert document.headers["content-type"] == "application/json"
    assert document.json() == {"rooms": [{"name": "living", "area_m2": 21.5}]}
    words = artifact_client.get(text["url"])
    assert words.headers["content-type"] == "text/plain; charset=utf-8"
    assert words.text == "A room for a loft, façade included."
    poster = artifact_client.get(video["poster_url"])
    assert poster.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(poster.content)).size == VIDEO_SIZE

    for answer in (drawing, model, document, words, poster, artifact_client.get(video["url"])):
        assert answer.headers["x-content-type-options"] == "nosniff"
    for passive in (model, document, words, poster):
        assert "content-security-policy" not in passive.headers
    missing = artifact_client.get("/files/out-0123456789abcdef0123456789abcdef.svg")
    assert missing.status_code == 404
    assert missing.headers["x-content-type-options"] == "nosniff"


def test_the_video_is_a_real_mp4_served_by_ranges(artifact_client: TestClient,
                                                   artifact_services: Services) -> None:
    video = run_job(artifact_client, artifact_services)["outputs"][1]
    whole = artifact_client.get(video["url"])
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    with av.open(io.BytesIO(whole.content)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == FRAMES and (frames[0].width, frames[0].height) == VIDEO_SIZE

    size = len(whole.content)
    part = artifact_client.get(video["url"], headers={"Range": "bytes=100-299"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-299/{size}"
    assert part.content == whole.content[100:300]
    assert part.headers["content-type"] == "video/mp4"
    assert part.headers["x-content-type-options"] == "nosniff"
    tail = artifact_client.get(video["url"], headers={"Range": "bytes=-64"})
    assert tail.status_code == 206 and tail.content == whole.content[-64:]
    beyond = artifact_client.get(video["url"], headers={"Range": f"bytes={size + 10}-"})
    assert beyond.status_code == 416


def test_the_poster_is_kept_and_removed_with_its_video(artifact_client: TestClient,
                                                       artifact_services: Services) -> None:
    job = run_job(artifact_client, artifact_services)
    video = job["outputs"][1]
    files = artifact_services.files
    stored_video, poster = files.lookup(key_of(video["url"])), files.lookup(key_of(video["poster_url"]))
    assert stored_video is not None and poster is not None
    # Adopted with the job when it succeeded: no longer a pending file the janitor would remove.
    assert poster.job_id == stored_video.job_id == job["id"]
    assert poster.expires_at == stored_video.expires_at


def test_outputs_of_a_job_taken_over_meanwhile_are_discarded_posters_too(
        artifact_services: Services, engine: ArtifactsEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = artifact_services.keys.create("t")[0]
    artifact_services.jobs.submit(owner, GenerationRequest(task=Task.text_to_image, prompt="x"))
    stored: list[dict[str, Any]] = []
    real_succeed = artifact_services.queue.succeed_many

    def lost_the_claim(token: str, outputs: dict[str, list[dict[str, Any]]], expires_at: float | None) -> set[str]:
        stored.extend(output for job_outputs in outputs.values() for output in job_outputs)
        return real_succeed("another-workers-token", outputs, expires_at)

    monkeypatch.setattr(artifact_services.queue, "succeed_many", lost_the_claim)
    drain(artifact_services)

    keys = [output["key"] for output in stored] + [o["poster_key"] for o in stored if "poster_key" in o]
    assert len(keys) == 6
    for key in keys:
        assert artifact_services.files.lookup(key) is None
        with pytest.raises(KeyError):
            artifact_services.storage.get(key)
    assert not any(path.exists() for path in engine.videos)
