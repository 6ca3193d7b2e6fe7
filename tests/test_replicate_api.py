"""The Replicate-compatible dialect against the real app (preview engine, the worker run in the
test's thread): predictions, models, versions, files, errors, the stream, and the native routes
it shares /v1 with."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from roomrender.api.replicate import routes as replicate_api
from roomrender.api.replicate.models import model_catalog
from roomrender.app import create_app
from roomrender.canonical.models import JobStatus
from roomrender.services import Services, build_services
from tests.conftest import BASE_URL, data_uri, drain
from tests.fakes import FAIL_PROMPT, AllTasksEngine

INTERIOR = "adirik/interior-design"
INTERIOR_VERSION = "76604baddc85b1b4616e1c6475eca080da339c8875bd4996705440484a6eac38"
HOUGH = "jagilley/controlnet-hough"
HOUGH_VERSION = "854e8727697a057c525cdb45ab037f64ecca770a1769cc52287c2e56472a247b"
PREDICTION_KEYS = {"id", "model", "version", "input", "logs", "output", "data_removed", "error",
                   "status", "source", "created_at", "urls", "metrics"}


@pytest.fixture
def room(room_jpeg: bytes) -> str:
    return data_uri(room_jpeg)


def create(client: TestClient, auth: dict[str, str], version: str = INTERIOR_VERSION,
           **input_: Any) -> Any:
    return client.post("/v1/predictions", headers=auth, json={"version": version, "input": input_})


def run(client: TestClient, auth: dict[str, str], services: Services, **input_: Any) -> dict[str, Any]:
    created = create(client, auth, **input_)
    assert created.status_code == 201, created.text
    drain(services)
    answer = client.get(f"/v1/predictions/{created.json()['id']}", headers=auth)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_a_prediction_is_created_starting_then_succeeds_with_one_image_url(client, auth, services, room):
    created = create(client, auth, image=room, prompt="a scandinavian living room", seed=7)
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == PREDICTION_KEYS
    assert body["status"] == "starting" and body["output"] is None and body["error"] is None
    assert (body["model"], body["version"]) == (INTERIOR, INTERIOR_VERSION)
    assert body["input"]["prompt"] == "a scandinavian living room" and body["input"]["seed"] == 7
    # The data: URI is not echoed whole.
    assert body["input"]["image"].startswith("data:image/jpeg;base64,") and len(body["input"]["image"]) < 200
    base = f"{BASE_URL}/v1/predictions/{body['id']}"
    assert body["urls"] == {"get": base, "cancel": f"{base}/cancel", "stream": f"{base}/stream"}
    assert created.headers["location"] == base
    # Not started: no started_at nor completed_at yet.
    assert body["created_at"].endswith("Z") and set(body) == PREDICTION_KEYS

    drain(services)
    done = client.get(f"/v1/predictions/{body['id']}", headers=auth).json()
    assert done["status"] == "succeeded" and done["error"] is None and done["data_removed"] is False
    assert isinstance(done["output"], str) and done["output"].startswith(f"{BASE_URL}/files/")
    image = Image.open(io.BytesIO(client.get(done["output"]).content))
    assert image.size == (320, 240)
    assert done["metrics"]["predict_time"] >= 0 and done["metrics"]["total_time"] >= done["metrics"]["predict_time"]
    assert done["completed_at"] >= done["started_at"] >= done["created_at"]
    assert "100%|██████████| 100/100" in done["logs"]


def test_the_input_becomes_the_canonical_request_with_the_models_defaults(client, auth, services, room):
    created = create(client, auth, image=room, prompt="a loft", num_inference_steps="40",
                     prompt_strength=0.6, seed=None)
    assert created.status_code == 201, created.text
    job = services.jobs.get(services.keys.authenticate(auth["Authorization"][7:]), created.json()["id"])
    request = job.request
    assert (job.task.value, job.dialect) == ("restyle", "replicate")
    assert (request.prompt, request.steps, request.strength, request.guidance, request.seed) == (
        "a loft", 40, 0.6, 15, None)
    assert request.negative_prompt.startswith("lowres, watermark")
    assert request.client_data == {"model": INTERIOR, "version": INTERIOR_VERSION,
                                   "input": {**created.json()["input"], "seed": None}}


@pytest.mark.parametrize("version", [INTERIOR_VERSION, f"{INTERIOR}:{INTERIOR_VERSION}", INTERIOR])
def test_version_is_an_id_an_owner_name_version_or_a_model(client, auth, room, version):
    created = create(client, auth, version=version, image=room, prompt="x")
    assert created.status_code == 201, created.text
    assert created.json()["version"] == INTERIOR_VERSION


def test_the_models_route_runs_the_latest_version(client, auth, room):
    created = client.post(f"/v1/models/{INTERIOR}/predictions", headers=auth,
                          json={"input": {"image": room, "prompt": "x"}})
    assert created.status_code == 201, created.text
    assert created.json()["model"] == INTERIOR
    unknown = client.post("/v1/models/nobody/nothing/predictions", headers=auth, json={"input": {}})
    assert unknown.status_code == 404
    assert unknown.json()["title"] == "Not found"


def test_unknown_versions_answer_replicates_422(client, auth, room):
    for version in ["0" * 64, f"{INTERIOR}:{'0' * 64}", "nobody/nothing"]:
        answer = create(client, auth, version=version, image=room, prompt="x")
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["title"] == "Invalid version or not permitted" and body["status"] == 422
        assert "does not exist" in body["detail"]


def test_inputs_outside_the_schema_answer_invalid_fields(client, auth, room):
    answer = create(client, auth, image=room, num_inference_steps=500, guidance=3, style="modern")
    assert answer.status_code == 422
    body = answer.json()
    assert body["title"] == "Input validation failed" and body["status"] == 422
    assert body["invalid_fields"] == [
        {"type": "required", "field": "input", "description": "prompt is required"},
        {"type": "additional_property_not_allowed", "field": "input",
         "description": "Additional property guidance, style is not allowed"},
        {"type": "maximum", "field": "input.num_inference_steps",
         "description": "Must be less than or equal to 150"},
    ]
    assert body["detail"] == "".join(f"- {f['field']}: {f['description']}\n" for f in body["invalid_fields"])


def test_the_body_itself_is_checked_like_replicate_does(client, auth):
    typo = client.post("/v1/predictions", headers=auth, json={"version": INTERIOR_VERSION, "inptu": {}})
    assert typo.status_code == 422
    assert typo.json()["invalid_fields"] == [
        {"type": "required", "field": "", "description": "input is required"},
        {"type": "additional_property_not_allowed", "field": "",
         "description": "Additional property inptu is not allowed"},
    ]
    no_version = client.post("/v1/predictions", headers=auth, json={"input": {}})
    assert no_version.status_code == 422 and "version is required" in no_version.json()["detail"]
    broken = client.post("/v1/predictions", headers={**auth, "Content-Type": "application/json"},
                         content=b"{not json")
    assert broken.status_code == 400 and broken.json()["title"] == "Bad request"


def test_an_image_that_cannot_be_read_is_a_422(client, auth):
    answer = create(client, auth, image=data_uri(b"not an image"), prompt="x")
    assert answer.status_code == 422 and answer.json()["status"] == 422


def test_a_model_the_engine_cannot_run_is_refused_honestly(client, auth, room):
    # Text to image needs a generative model; the preview engine has none.
    answer = client.post("/v1/models/roomrender/text-to-image/predictions", headers=auth,
                         json={"input": {"prompt": "a room"}})
    assert answer.status_code == 422
    assert answer.json()["title"] == "Not supported by this server"
    assert "diffusers engine" in answer.json()["detail"]


def test_tokens_are_bearer_or_token_and_errors_are_replicates(client, api_key):
    for headers in [{}, {"Authorization": "Bearer rr_wrong"}]:
        answer = client.get("/v1/predictions", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["title"] == "Unauthenticated" and answer.json()["status"] == 401
    assert client.get("/v1/predictions", headers={"Authorization": f"Token {api_key}"}).status_code == 200


def test_a_prediction_of_another_token_or_dialect_is_not_found(client, auth, services, room_jpeg, room):
    created = create(client, auth, image=room, prompt="x").json()
    other = {"Authorization": f"Bearer {services.keys.create('other')[1]}"}
    assert client.get(f"/v1/predictions/{created['id']}", headers=other).status_code == 404
    native = client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": room}).json()
    missing = client.get(f"/v1/predictions/{native['id']}", headers=auth)
    assert missing.status_code == 404 and set(missing.json()) == {"title", "detail", "status"}


def test_the_native_routes_under_v1_are_untouched(client, auth, room):
    submitted = client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": room})
    assert submitted.status_code == 202 and submitted.json()["status"] == "queued"
    assert client.get(f"/v1/jobs/{submitted.json()['id']}", headers=auth).json()["task"] == "restyle"
    # Native errors keep the native shape; Replicate's paths have Replicate's.
    assert client.get("/v1/jobs/nope", headers=auth).json()["error"]["code"] == "not_found"
    assert client.get("/v1/nothing-here", headers=auth).json()["error"]["code"] == "not_found"
    assert client.get("/v1/predictions/x/y/z", headers=auth).json()["title"] == "Not found"
    assert client.delete("/v1/predictions", headers=auth).json()["status"] == 405
    assert client.get("/v1/catalog").status_code == 200


def test_a_failed_prediction_tells_its_error(settings, room):
    built = build_services(settings, engine=AllTasksEngine())
    app = create_app(settings, services=built, workers=0, janitor=False)
    auth = {"Authorization": f"Bearer {built.keys.create('t')[1]}"}
    with TestClient(app, base_url=BASE_URL) as client:
        done = run(client, auth, built, image=room, prompt=FAIL_PROMPT)
    built.db.dispose()
    assert done["status"] == "failed" and done["output"] is None
    assert "asked to fail" in done["error"] and "failed: " in done["logs"]


def test_cancel_stops_a_queued_prediction_and_leaves_a_finished_one(client, auth, services, room):
    queued = create(client, auth, image=room, prompt="x").json()
    canceled = client.post(f"/v1/predictions/{queued['id']}/cancel", headers=auth)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert "completed_at" in canceled.json() and canceled.json()["error"] is None
    assert "started_at" not in canceled.json()
    done = run(client, auth, services, image=room, prompt="y")
    again = client.post(f"/v1/predictions/{done['id']}/cancel", headers=auth)
    assert again.status_code == 200 and again.json()["status"] == "succeeded"


def test_the_list_is_newest_first_in_cursor_pages(client, auth, room, monkeypatch):
    monkeypatch.setattr(replicate_api, "PAGE_SIZE", 2)
    ids = [create(client, auth, image=room, prompt=f"room {i}").json()["id"] for i in range(3)]
    client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": room})  # not a prediction
    first = client.get("/v1/predictions", headers=auth).json()
    assert [p["id"] for p in first["results"]] == ids[::-1][:2]
    assert first["previous"] is None and first["next"].startswith(f"{BASE_URL}/v1/predictions?cursor=")
    second = client.get(first["next"], headers=auth).json()
    assert [p["id"] for p in second["results"]] == [ids[0]] and second["next"] is None
    assert client.get("/v1/predictions?cursor=%%%", headers=auth).status_code == 400
    assert client.get("/v1/predictions?source=web", headers=auth).json()["results"] == []
    future = client.get("/v1/predictions?created_after=2999-01-01T00:00:00Z", headers=auth).json()
    assert future["results"] == []


def test_the_stream_sends_logs_output_and_done(client, auth, services, room):
    done = run(client, auth, services, image=room, prompt="x")
    with client.stream("GET", done["urls"]["stream"], headers=auth) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [dict(line.split(": ", 1) for line in block.splitlines())
              for block in text.strip().split("\n\n")]
    assert [e["event"] for e in events] == ["logs", "output", "done"]
    assert [int(e["id"]) for e in events] == [1, 2, 3]
    assert events[1]["data"] == done["output"] and events[2]["data"] == "{}"


def test_models_and_versions_describe_their_inputs(client, auth):
    model = client.get(f"/v1/models/{INTERIOR}", headers=auth).json()
    assert (model["owner"], model["name"], model["visibility"]) == ("adirik", "interior-design", "public")
    latest = model["latest_version"]
    assert latest["id"] == INTERIOR_VERSION
    schemas = latest["openapi_schema"]["components"]["schemas"]
    assert set(schemas["Input"]["properties"]) == {
        "image", "prompt", "negative_prompt", "num_inference_steps", "guidance_scale",
        "prompt_strength", "seed"}
    assert schemas["Output"] == {"type": "string", "format": "uri", "title": "Output"}
    hough = client.get(f"/v1/models/{HOUGH}/versions/{HOUGH_VERSION}", headers=auth).json()
    assert set(hough["openapi_schema"]["components"]["schemas"]["Input"]["properties"]) >= {
        "image", "prompt", "a_prompt", "n_prompt", "num_samples", "image_resolution",
        "detect_resolution", "ddim_steps", "scale", "seed", "value_threshold", "distance_threshold"}
    versions = client.get(f"/v1/models/{HOUGH}/versions", headers=auth).json()
    assert [v["id"] for v in versions["results"]] == [HOUGH_VERSION]
    assert client.get(f"/v1/models/{HOUGH}/versions/abc", headers=auth).status_code == 404
    assert client.get("/v1/models/nobody/nothing", headers=auth).status_code == 404
    listed = {m["owner"] + "/" + m["name"] for m in client.get("/v1/models", headers=auth).json()["results"]}
    assert {INTERIOR, HOUGH, "roomrender/restyle", "roomrender/text-to-image", "roomrender/segment"} <= listed


def test_roomrender_models_take_canonical_inputs_and_their_version_is_their_schemas_hash(
        client, auth, services, room):
    model = client.get("/v1/models/roomrender/recolor", headers=auth).json()
    schema = model["latest_version"]["openapi_schema"]
    assert model["latest_version"]["id"] == hashlib.sha256(json.dumps(
        {"model": "roomrender/recolor", "schema": schema}, sort_keys=True).encode()).hexdigest()
    assert schema["components"]["schemas"]["Input"]["required"] == ["image", "color"]
    created = client.post("/v1/models/roomrender/recolor/predictions", headers=auth,
                          json={"input": {"image": room, "color": "#A3B18A", "area": "wall", "n": 2}})
    assert created.status_code == 201, created.text
    drain(services)
    done = client.get(created.json()["urls"]["get"], headers=auth).json()
    assert done["status"] == "succeeded" and len(done["output"]) == 2
    bad = client.post("/v1/models/roomrender/recolor/predictions", headers=auth,
                      json={"input": {"image": room, "color": "green"}})
    assert bad.status_code == 422 and bad.json()["invalid_fields"][0]["field"] == "input.color"


def test_files_are_uploaded_and_usable_as_inputs(client, auth, services, room_jpeg):
    uploaded = client.post("/v1/files", headers=auth,
                           files={"content": ("room.jpg", room_jpeg, "image/jpeg")})
    assert uploaded.status_code == 201, uploaded.text
    file = uploaded.json()
    digest = hashlib.sha256(room_jpeg).hexdigest()
    assert (file["name"], file["content_type"], file["size"]) == ("room.jpg", "image/jpeg", len(room_jpeg))
    assert file["checksums"] == {"sha256": digest} and file["metadata"] == {}
    assert file["urls"] == {"get": f"{BASE_URL}/v1/files/{file['id']}"}
    assert client.get(file["urls"]["get"], headers=auth).json() == file
    assert [f["id"] for f in client.get("/v1/files", headers=auth).json()["results"]] == [file["id"]]

    done = run(client, auth, services, image=file["urls"]["get"], prompt="x")
    assert done["status"] == "succeeded" and done["input"]["image"] == file["urls"]["get"]
    # Used by a prediction, it goes with that prediction's data.
    assert client.delete(file["urls"]["get"], headers=auth).status_code == 409

    unused = client.post("/v1/files", headers=auth, files={"content": ("b.jpg", room_jpeg, "image/jpeg")}).json()
    assert client.delete(unused["urls"]["get"], headers=auth).status_code == 204
    assert client.get(unused["urls"]["get"], headers=auth).status_code == 404
    other = {"Authorization": f"Bearer {services.keys.create('other')[1]}"}
    assert client.get(file["urls"]["get"], headers=other).status_code == 404
    refused = create(client, other, image=file["urls"]["get"], prompt="x")
    assert refused.status_code == 422


def test_files_that_are_not_images_or_carry_metadata_are_refused(client, auth, room_jpeg):
    text = client.post("/v1/files", headers=auth, files={"content": ("a.txt", b"hello", "text/plain")})
    assert text.status_code == 422 and text.json()["status"] == 422
    tagged = client.post("/v1/files", headers=auth, data={"metadata": '{"customer": 1}'},
                         files={"content": ("a.jpg", room_jpeg, "image/jpeg")})
    assert tagged.status_code == 422 and "metadata" in tagged.json()["detail"]
    # The Node client sends its metadata as a JSON part, `{}` when there is none.
    as_part = client.post("/v1/files", headers=auth, files=[
        ("content", ("a.jpg", room_jpeg, "image/jpeg")), ("metadata", ("blob", b"{}", "application/json"))])
    assert as_part.status_code == 201, as_part.text
    tagged_part = client.post("/v1/files", headers=auth, files=[
        ("content", ("a.jpg", room_jpeg, "image/jpeg")), ("metadata", ("blob", b'{"a": 1}', "application/json"))])
    assert tagged_part.status_code == 422
    assert client.post("/v1/files", headers=auth, data={"x": "y"}).status_code == 400


def test_the_webhook_filter_becomes_canonical_events(client, auth, services, room):
    owner = services.keys.authenticate(auth["Authorization"][7:])
    services.jobs.settings = services.settings.model_copy(update={"allow_private_urls": True})
    cases = [(None, ["job.canceled", "job.failed", "job.succeeded"]),
             (["start", "completed"], ["job.canceled", "job.failed", "job.started", "job.succeeded"]),
             (["logs"], ["job.progress"])]
    for events, expected in cases:
        body: dict[str, Any] = {"version": INTERIOR_VERSION, "input": {"image": room, "prompt": "x"},
                                "webhook": "http://127.0.0.1:9/hook"}
        if events:
            body["webhook_events_filter"] = events
        created = client.post("/v1/predictions", headers=auth, json=body)
        assert created.status_code == 201, created.text
        assert services.jobs.get(owner, created.json()["id"]).request.webhook_events == expected
    secret = client.get("/v1/webhooks/default/secret", headers=auth).json()
    assert secret == {"key": services.webhook_secrets.get(owner.id).current}
    assert secret["key"].startswith("whsec_")


def test_cancel_after_is_refused_as_not_supported(client, auth, room):
    answer = client.post("/v1/predictions", headers={**auth, "Cancel-After": "5m"},
                         json={"version": INTERIOR_VERSION, "input": {"image": room, "prompt": "x"}})
    assert answer.status_code == 422 and "Cancel-After" in answer.json()["detail"]


def test_every_model_of_the_data_file_loads_with_a_schema_for_each_input():
    for model in model_catalog().models.values():
        assert set(model.inputs) == set(model.input_schema["properties"]), model.ref
        assert all(len(version.id) == 64 for version in model.versions)


@pytest.fixture
def app_with_fake(settings) -> Iterator[tuple[TestClient, Services]]:
    built = build_services(settings, engine=AllTasksEngine())
    app = create_app(settings, services=built, workers=0, janitor=False)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client, built
    built.db.dispose()


def test_a_job_whose_results_expired_is_data_removed(app_with_fake, room):
    client, built = app_with_fake
    auth = {"Authorization": f"Bearer {built.keys.create('t')[1]}"}
    done = run(client, auth, built, image=room, prompt="x")
    with built.db.begin() as connection:
        from sqlalchemy import update

        from roomrender.db.tables import jobs
        connection.execute(update(jobs).where(jobs.c.id == done["id"]).values(expires_at=1.0))
    removed = client.get(done["urls"]["get"], headers=auth).json()
    assert removed["status"] == JobStatus.succeeded.value
    assert removed["data_removed"] is True and removed["output"] is None


def test_no_credits_answers_402_insufficient_credit(client, services, room):
    _, poor = services.keys.create("poor", credits=0)
    answer = create(client, {"Authorization": f"Bearer {poor}"}, image=room, prompt="x")
    assert answer.status_code == 402
    assert answer.json()["title"] == "Insufficient credit" and answer.json()["status"] == 402


def test_replicates_other_resources_answer_a_404_its_clients_read(client, auth):
    answer = client.post("/v1/deployments/acme/room/predictions", headers=auth, json={"input": {}})
    assert answer.status_code == 404 and answer.json()["title"] == "Not found"


def test_the_openapi_document_describes_the_replicate_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/predictions", "/v1/predictions/{prediction_id}", "/v1/predictions/{prediction_id}/cancel",
            "/v1/models/{owner}/{name}/predictions", "/v1/files", "/v1/webhooks/default/secret",
            "/v1/jobs"} <= set(paths)


def test_every_canonical_task_has_a_roomrender_model(client, auth):
    from roomrender.canonical.models import Task

    for task in Task:
        name = task.value.replace("_", "-")
        answer = client.get(f"/v1/models/roomrender/{name}", headers=auth)
        assert answer.status_code == 200, (task, answer.text)
        assert answer.json()["latest_version"]["openapi_schema"]["components"]["schemas"]["Input"]
