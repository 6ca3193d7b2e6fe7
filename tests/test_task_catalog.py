"""Each task defined once (canonical/tasks.py), as `GET /v1/tasks` shows it and as validation and
the credits read it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from roomrender.app import create_app
from roomrender.canonical.models import GenerationRequest, Task
from roomrender.canonical.tasks import COMMON_OPTIONS, TASKS, Cost, cost_of, missing_input
from roomrender.engines.diffusers.registry import load_registry
from roomrender.engines.diffusers.without_models import NO_MODEL_TASKS
from roomrender.engines.preview.engine import PreviewEngine
from roomrender.services import build_services
from tests.conftest import data_uri, drain


def test_every_task_is_listed_with_its_output_kind_cost_and_options(client: TestClient) -> None:
    response = client.get("/v1/tasks")
    assert response.status_code == 200
    catalog = response.json()
    listed = {task["name"]: task for task in catalog["tasks"]}
    assert set(listed) == {task.value for task in Task}
    kinds = {"video": "video", "object_3d": "mesh", "vectorize": "vector", "chat": "text"}
    for task in listed.values():
        assert task["output_kind"] == kinds.get(task["name"], "image")
        if task["name"] == "video":
            assert task["cost"] == {"credits": 1, "per": "second", "counted_by": "duration"}
        elif task["name"] == "object_3d":
            assert task["cost"] == {"credits": 3, "per": "job", "counted_by": None}
        elif task["name"] == "chat":
            # By the length of what the language model reads.
            assert task["cost"] == {"credits": 1, "per": "3000 words", "counted_by": "prompt"}
        elif task["name"] in ("measure", "vectorize"):
            # One result whatever n: it costs a job.
            assert task["cost"] == {"credits": 1, "per": "job", "counted_by": None}
        else:
            assert task["cost"] == {"credits": 1, "per": "image", "counted_by": "n"}
        assert task["summary"]
    # Option schemas are GenerationRequest's own, references inlined.
    restyle = listed["restyle"]
    assert restyle["options"]["n"]["maximum"] == 8 and restyle["options"]["n"]["minimum"] == 1
    assert restyle["options"]["strength"]["anyOf"][0] == {"maximum": 1.0, "minimum": 0.0, "type": "number"}
    margins = listed["expand"]["options"]["expand"]["anyOf"][0]
    assert set(margins["properties"]) == {"left", "right", "top", "bottom"}
    assert "$ref" not in str(listed["place"]["options"])
    assert listed["upscale"]["requires"][1] == {"any_of": ["scale"],
                                                "message": "an upscale needs a scale of 2, 4 or 8"}
    assert [(i["name"], i["required"]) for i in listed["edit"]["inputs"]] == [
        ("image", True), ("mask", True), ("reference_image", False)]
    # A guide image, optional (image-to-image).
    assert [(i["name"], i["required"]) for i in listed["text_to_image"]["inputs"]] == [("image", False)]
    assert listed["cutout"]["output_formats"] == ["png", "webp"]
    assert set(catalog["common_options"]) == set(COMMON_OPTIONS)
    assert catalog["input_limits"]["max_bytes"] == 20 * 1024 * 1024
    assert "image/webp" in catalog["input_limits"]["content_types"]
    schema = client.get("/openapi.json").json()
    assert schema["paths"]["/v1/tasks"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/TaskCatalogOut"}


def test_runs_here_and_ignored_options_follow_the_servers_engine(client: TestClient) -> None:
    catalog = client.get("/v1/tasks").json()
    assert catalog["engine"] == "preview"
    runs = {task["name"] for task in catalog["tasks"] if task["runs_here"]}
    assert runs == {task.value for task in PreviewEngine().supported_tasks()}
    assert "text_to_image" not in runs and "restyle" in runs
    listed = {task["name"]: task for task in catalog["tasks"]}
    # The preview engine regrades by style and strength: words reach no model there.
    assert {"prompt", "room_type", "negative_prompt"} <= set(listed["restyle"]["ignored_options"])
    assert {"style", "strength", "n", "seed"}.isdisjoint(listed["restyle"]["ignored_options"])
    # It only erases: an edit by prompt, materials or photo is refused there.
    assert {"prompt", "materials", "reference_image"} <= set(listed["edit"]["ignored_options"])
    assert "remove" not in listed["edit"]["ignored_options"]
    assert listed["text_to_image"]["ignored_options"] == []


def test_a_task_the_preview_engine_ignores_an_option_of_really_changes_nothing(client, auth, services,
                                                                                room_jpeg) -> None:
    """What the catalog calls ignored is ignored: a restyle's prompt leaves the pixels alone."""
    body = {"task": "restyle", "image": data_uri(room_jpeg), "style": "coastal", "seed": 4}
    plain = client.post("/v1/jobs", headers=auth, json=body).json()
    worded = client.post("/v1/jobs", headers=auth, json=body | {"prompt": "a red sofa"}).json()
    drain(services)
    outputs = [client.get(client.get(f"/v1/jobs/{job['id']}", headers=auth).json()["outputs"][0]["url"])
               for job in (plain, worded)]
    assert outputs[0].status_code == 200 and outputs[0].content == outputs[1].content


def test_the_definitions_name_the_engines_that_run_each_task() -> None:
    preview = PreviewEngine().supported_tasks()
    registry = load_registry()
    diffusers = {task for family in registry.families for task in registry.serving(family)}
    diffusers |= NO_MODEL_TASKS  # what it runs without a model, as the preview engine does
    for task, definition in TASKS.items():
        assert ("preview" in definition.engine_names) == (task in preview), task
        assert ("diffusers" in definition.engine_names) == (task in diffusers), task


def test_every_request_field_belongs_to_a_task_or_to_all() -> None:
    taken = {name for d in TASKS.values() for name in (*d.inputs, *d.options)}
    untaken = set(GenerationRequest.model_fields) - taken - set(COMMON_OPTIONS)
    # The task itself; the dialect's own record; a chat's earlier turns (the server fills them).
    assert untaken == {"task", "client_data", "history"}


def test_validation_and_cost_read_the_definition() -> None:
    jpeg_cutout = GenerationRequest(task=Task.cutout, image="in-1", output_format="jpeg")
    assert missing_input(jpeg_cutout) == ("a cutout is transparent: its output_format must be png or "
                                          "webp, not jpeg")
    assert missing_input(GenerationRequest(task=Task.upscale, image="in-1")) == (
        "an upscale needs a scale of 2, 4 or 8")
    assert missing_input(GenerationRequest(task=Task.upscale, image="in-1", scale=4)) is None
    assert cost_of(GenerationRequest(task=Task.restyle, image="in-1", n=3)) == 3
    assert TASKS[Task.upscale].output_size(GenerationRequest(task=Task.upscale, scale=4), 100, 50) == (400, 200)
    per_job = Cost(5)
    assert per_job.of(GenerationRequest(task=Task.restyle, n=4)) == 5
    with pytest.raises(ValueError, match="length"):
        Cost(2, per="second", counted_by="length")


def test_a_job_is_charged_what_its_definition_says(settings, room_jpeg) -> None:
    services = build_services(settings)
    key, plaintext = services.keys.create("metered", credits=10)
    app = create_app(settings, services=services, workers=0, janitor=False)
    with TestClient(app) as client:
        created = client.post("/v1/jobs", headers={"Authorization": f"Bearer {plaintext}"},
                              json={"task": "upscale", "image": data_uri(room_jpeg), "scale": 2, "n": 3})
        assert created.status_code == 202, created.text
    expected = cost_of(GenerationRequest(task=Task.upscale, image="x", scale=2, n=3))
    assert services.keys.get(key.id).credits_available == 10 - expected == 7
    services.db.dispose()
