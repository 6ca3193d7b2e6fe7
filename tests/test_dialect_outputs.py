"""Every dialect presents outputs of every artifact kind: a finished job's video, drawing or mesh
is answered by URL as each vendor answers its own files (the native API lists typed outputs;
Spacely its result URLs; Luw `output`, a string for one file; Replicate `output`, a string for a
single-file model). Only images are rendered by the engines so far, so the jobs are built here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from roomrender.api.luw.presenters import result_body as luw_result
from roomrender.api.native.presenters import JobOut, job_json
from roomrender.api.replicate.presenters import output_items, prediction_json
from roomrender.api.spacely.presenters import result_body as spacely_result
from roomrender.canonical.artifacts import ArtifactKind
from roomrender.canonical.models import GenerationRequest, Job, JobStatus, Output, Task
from roomrender.storage.local import LocalStorage

BASE = "http://rooms.example"
STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
VIDEO = Output(url=f"{BASE}/files/out-1.mp4", key="out-1.mp4", content_type="video/mp4",
               kind=ArtifactKind.video, width=1280, height=720, size_bytes=2_000_000,
               duration_seconds=4.0, fps=24.0, poster_url=f"{BASE}/files/out-1-poster.jpg")
DRAWING = Output(url=f"{BASE}/files/out-2.svg", key="out-2.svg", content_type="image/svg+xml",
                 kind=ArtifactKind.vector, width=800, height=600, size_bytes=5_000)
MESH = Output(url=f"{BASE}/files/out-3.glb", key="out-3.glb", content_type="model/gltf-binary",
              kind=ArtifactKind.mesh, size_bytes=300_000)


def finished(*outputs: Output, n: int = 1, client_data: dict[str, Any] | None = None) -> Job:
    return Job(id="0b6a4c1e-0000-4000-8000-000000000001", owner_id="k", dialect="native",
               task=Task.restyle, status=JobStatus.succeeded,
               request=GenerationRequest(task=Task.restyle, image="in-1.jpg", n=n,
                                         client_data=client_data),
               cost=n, priority=0, progress=1.0, attempts=1, created_at=STARTED,
               started_at=STARTED + timedelta(seconds=1),
               finished_at=STARTED + timedelta(seconds=9), outputs=list(outputs))


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path, BASE)


def test_native_lists_each_output_with_its_kind_and_what_it_has():
    body = job_json(finished(VIDEO, DRAWING, MESH, n=3), BASE)
    assert body["outputs"] == [
        {"kind": "video", "url": VIDEO.url, "content_type": "video/mp4", "width": 1280,
         "height": 720, "size_bytes": 2_000_000, "duration_seconds": 4.0, "fps": 24.0,
         "poster_url": VIDEO.poster_url},
        {"kind": "vector", "url": DRAWING.url, "content_type": "image/svg+xml", "width": 800,
         "height": 600, "size_bytes": 5_000},
        {"kind": "mesh", "url": MESH.url, "content_type": "model/gltf-binary", "size_bytes": 300_000},
    ]
    JobOut.model_validate(body)  # the shape the OpenAPI schema documents


def test_spacely_answers_the_result_urls_whatever_their_kind():
    assert spacely_result(finished(VIDEO, DRAWING, n=2))["data"] == {
        "refId": "0b6a4c1e-0000-4000-8000-000000000001", "status": "success",
        "result": [VIDEO.url, DRAWING.url], "progress": 100}


def test_luw_answers_one_files_url_as_a_string_and_several_as_a_list(storage):
    # A video generation answers its MP4's URL in `output`, as Luw's video models do.
    assert luw_result(finished(VIDEO), storage) == {"status": True, "output": VIDEO.url}
    assert luw_result(finished(DRAWING), storage) == {"status": True, "output": DRAWING.url}
    assert luw_result(finished(VIDEO, MESH, n=2), storage) == {"status": True,
                                                               "output": [VIDEO.url, MESH.url]}


def test_replicate_answers_a_string_for_a_single_file_model_and_a_list_otherwise():
    single = finished(VIDEO, client_data={"model": "adirik/interior-design", "input": {}})
    prediction = prediction_json(single, BASE)
    assert prediction["status"] == "succeeded" and prediction["output"] == VIDEO.url
    assert output_items(single) == [VIDEO.url]
    several = finished(DRAWING, MESH, n=2, client_data={"model": "roomrender/restyle", "input": {}})
    assert prediction_json(several, BASE)["output"] == [DRAWING.url, MESH.url]
    assert output_items(several) == [DRAWING.url, MESH.url]
