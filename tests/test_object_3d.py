"""object_3d on the native API and the preview engine: a card of the cut-out photo, as a GLB in
metres, Y up, on the floor, within its face budget; and the finishing every engine's mesh gets."""

from __future__ import annotations

import io

import pytest
import trimesh
from PIL import Image

from roomrender.canonical.models import GenerationRequest, Task
from roomrender.engines.meshes import glb
from tests.conftest import data_uri, drain
from tests.glb_checks import checked_glb, object_photo


def submit_and_run(client, auth, services, **fields) -> dict:
    created = client.post("/v1/jobs", headers=auth, json={"task": "object_3d", **fields})
    assert created.status_code == 202, created.text
    drain(services)
    job = client.get(created.headers["Location"], headers=auth).json()
    assert job["status"] == "succeeded", job
    return job  # type: ignore[no-any-return]


def test_a_photo_becomes_a_card_of_the_object_at_its_real_size(client, auth, services):
    job = submit_and_run(client, auth, services, image=data_uri(object_photo((160, 120)), "image/png"),
                         dimensions={"height": 0.6})
    output = job["outputs"][0]
    assert output["kind"] == "mesh" and output["content_type"] == "model/gltf-binary"
    mesh = checked_glb(client.get(output["url"]).content, max_faces=12)
    width, height, depth = mesh.extents
    assert height == pytest.approx(0.6) and width == pytest.approx(0.8)  # the photo's 4:3
    assert depth < 0.05  # gently extruded
    # The texture is the cut-out: the background transparent, the object's colour kept.
    texture = mesh.visual.material.baseColorTexture.convert("RGBA")
    assert texture.getpixel((2, 2))[3] == 0
    assert texture.getpixel((80, 60)) == (40, 70, 160, 255)


def test_without_a_texture_the_model_takes_the_objects_colour(client, auth, services):
    job = submit_and_run(client, auth, services, image=data_uri(object_photo(colour=(200, 40, 40)), "image/png"),
                         texture=False)
    mesh = checked_glb(client.get(job["outputs"][0]["url"]).content, max_faces=12, textured=False)
    assert tuple(mesh.visual.material.baseColorFactor[:3]) == (200, 40, 40)
    assert max(mesh.extents) == pytest.approx(1.0)  # no real size given: its longest side 1 m


@pytest.mark.parametrize("fields,message", [
    ({"extra_images": ["a", "b", "c", "d"]}, "at most 4 photos"),
    ({"simplify": 4}, "simplify"),
    ({"dimensions": {"height": -1}}, "height"),
])
def test_bad_object_3d_requests_are_refused(client, auth, fields, message):
    answer = client.post("/v1/jobs", headers=auth, json={
        "task": "object_3d", "image": data_uri(object_photo(), "image/png"), **fields})
    assert answer.status_code in (400, 422), answer.text
    assert message in answer.text


def test_the_task_catalog_describes_object_3d(client):
    tasks = {task["name"]: task for task in client.get("/v1/tasks").json()["tasks"]}
    task = tasks["object_3d"]
    assert task["output_kind"] == "mesh" and task["runs_here"] is True
    assert task["cost"] == {"credits": 3, "per": "job", "counted_by": None}
    assert {"texture", "simplify", "glossy", "dimensions"} <= set(task["options"])
    assert {"extra_images", "seed"} <= set(task["ignored_options"])


def test_a_dense_mesh_is_decimated_to_its_budget_and_textured_from_the_front():
    sphere = trimesh.creation.icosphere(subdivisions=4)  # 5120 faces
    photo = Image.open(io.BytesIO(object_photo())).convert("RGBA")
    request = GenerationRequest(task=Task.object_3d, image="photo", simplify=300,
                                dimensions={"width": 0.4})
    mesh = checked_glb(glb(sphere, photo, request), max_faces=300)
    assert len(mesh.faces) > 150  # decimated near the budget, not to nothing
    assert mesh.extents[0] == pytest.approx(0.4, rel=0.02)


def test_the_replicate_model_answers_the_glb_url(client, auth, services):
    created = client.post("/v1/models/roomrender/object-3d/predictions", headers=auth, json={"input": {
        "image": data_uri(object_photo(), "image/png"), "simplify": 12, "texture": True,
        "dimensions": {"width": 1.2}}})
    assert created.status_code == 201, created.text
    drain(services)
    done = client.get(created.json()["urls"]["get"], headers=auth).json()
    assert done["status"] == "succeeded" and isinstance(done["output"], str), done
    mesh = checked_glb(client.get(done["output"]).content, max_faces=12)
    assert mesh.extents[0] == pytest.approx(1.2)
