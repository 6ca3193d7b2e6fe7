"""The native API (/v1), used as a client would."""

from __future__ import annotations

import io
import json
import threading
import time

from PIL import Image
from sqlalchemy import select

from roomrender.app import create_app
from roomrender.db.tables import api_keys, jobs
from roomrender.services import build_services
from tests.conftest import data_uri, drain, make_room_photo
from tests.event_streams import Stream
from tests.slow_engine import FailingEngine, SlowPreviewEngine


def submit(client, auth, room_jpeg, **fields):
    body = {"task": "restyle", "image": data_uri(room_jpeg), "style": "modern"} | fields
    return client.post("/v1/jobs", headers=auth, json=body)


def test_submit_answers_202_with_status_urls_and_queue_position(client, auth, room_jpeg):
    first = submit(client, auth, room_jpeg)
    second = submit(client, auth, room_jpeg)
    assert first.status_code == 202
    job = second.json()
    assert job["status"] == "queued"
    assert job["queue_position"] == 2
    assert job["eta_seconds"] > 0
    assert job["urls"]["self"] == f"http://testserver/v1/jobs/{job['id']}"
    assert job["urls"]["cancel"].endswith("/cancel")
    assert second.headers["location"] == job["urls"]["self"]


def test_a_job_succeeds_with_outputs_of_the_inputs_aspect_and_changed_pixels(client, auth, services, room_jpeg):
    job_id = submit(client, auth, room_jpeg, n=2, seed=3).json()["id"]
    drain(services)
    job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "succeeded" and job["progress"] == 100
    assert job["queue_position"] is None and job["error"] is None
    assert job["started_at"] and job["finished_at"]
    assert len(job["outputs"]) == 2
    original = Image.open(io.BytesIO(room_jpeg)).convert("RGB")
    for output in job["outputs"]:
        assert (output["width"], output["height"]) == original.size
        downloaded = client.get(output["url"])
        assert downloaded.status_code == 200
        image = Image.open(io.BytesIO(downloaded.content)).convert("RGB")
        assert image.size == original.size
        assert image.tobytes() != original.tobytes()


def test_every_job_endpoint_needs_a_key(client, auth, room_jpeg):
    job_id = submit(client, auth, room_jpeg).json()["id"]
    for method, path in [("GET", "/v1/jobs"), ("GET", f"/v1/jobs/{job_id}"),
                         ("POST", f"/v1/jobs/{job_id}/cancel"), ("POST", "/v1/jobs"),
                         ("GET", f"/v1/jobs/{job_id}/events"), ("POST", "/v1/uploads")]:
        response = client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["code"] == "unauthorized"
    wrong = client.get("/v1/jobs", headers={"Authorization": "Bearer rr_nope"})
    assert wrong.status_code == 401
    for public in ("/healthz", "/readyz", "/v1/catalog", "/openapi.json", "/docs", "/metrics"):
        assert client.get(public).status_code == 200, public


def test_a_key_sees_only_its_own_jobs(client, auth, services, room_jpeg):
    job_id = submit(client, auth, room_jpeg).json()["id"]
    other = {"Authorization": f"Bearer {services.keys.create('other')[1]}"}
    assert client.get(f"/v1/jobs/{job_id}", headers=other).status_code == 404
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=other).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/events", headers=other).status_code == 404
    assert client.get("/v1/jobs", headers=other).json()["total"] == 0
    assert client.get("/v1/jobs", headers=auth).json()["total"] == 1


def test_only_a_hash_of_each_key_is_stored(services):
    key, plaintext = services.keys.create("alice")
    with services.db.connect() as connection:
        row = connection.execute(select(api_keys).where(api_keys.c.id == key.id)).one()
    assert plaintext not in json.dumps([str(value) for value in row])
    assert len(row.key_hash) == 64


def test_a_revoked_key_is_refused(client, services):
    key, plaintext = services.keys.create("bob")
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/v1/jobs", headers=headers).status_code == 200
    services.keys.revoke(key.id)
    assert client.get("/v1/jobs", headers=headers).status_code == 401


def test_the_x_api_key_header_works_too(client, api_key):
    assert client.get("/v1/jobs", headers={"X-API-KEY": api_key}).status_code == 200


def test_credits_are_charged_per_image_and_refused_when_short(client, services, room_jpeg):
    key, plaintext = services.keys.create("metered", credits=3)
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert submit(client, headers, room_jpeg, n=2).status_code == 202
    refused = submit(client, headers, room_jpeg, n=2)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "insufficient_credits"
    assert "1 left" in refused.json()["error"]["message"]
    assert client.get("/v1/account", headers=headers).json()["credits"]["available"] == 1


def test_a_failed_job_gives_its_credits_back(settings, room_jpeg):
    services = build_services(settings, engine=FailingEngine())
    key, plaintext = services.keys.create("metered", credits=2)
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings, services=services, janitor=False),
                    base_url="http://testserver") as client:
        headers = {"Authorization": f"Bearer {plaintext}"}
        job_id = submit(client, headers, room_jpeg, n=2).json()["id"]
        assert services.keys.get(key.id).credits_available == 0
        drain(services)
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "failed"
    assert job["error"]["code"] == "generation_failed"
    assert "the model exploded" in job["error"]["message"]
    assert services.keys.get(key.id).credits_available == 2


def test_list_is_paged_newest_first(client, auth, room_jpeg):
    ids = [submit(client, auth, room_jpeg).json()["id"] for _ in range(5)]
    page = client.get("/v1/jobs?limit=2&offset=1", headers=auth).json()
    assert page["total"] == 5 and page["limit"] == 2
    assert [job["id"] for job in page["data"]] == [ids[3], ids[2]]
    queued = client.get("/v1/jobs?status=succeeded", headers=auth).json()
    assert queued["total"] == 0


def test_cancel_of_a_queued_job_is_immediate_and_refunds(client, services, room_jpeg):
    key, plaintext = services.keys.create("metered", credits=1)
    headers = {"Authorization": f"Bearer {plaintext}"}
    job_id = submit(client, headers, room_jpeg).json()["id"]
    canceled = client.post(f"/v1/jobs/{job_id}/cancel", headers=headers)
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    assert services.keys.get(key.id).credits_available == 1
    assert drain(services) == 0


def test_cancel_of_a_running_job_stops_it_at_its_next_step(settings, room_jpeg):
    engine = SlowPreviewEngine(steps=1000, step_seconds=0.02)
    services = build_services(settings, engine=engine)
    plaintext = services.keys.create("t")[1]
    headers = {"Authorization": f"Bearer {plaintext}"}
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings, services=services, workers=1, janitor=False),
                    base_url="http://testserver") as client:
        job_id = submit(client, headers, room_jpeg).json()["id"]
        deadline = time.time() + 30
        while client.get(f"/v1/jobs/{job_id}", headers=headers).json()["status"] != "running":
            assert time.time() < deadline
            time.sleep(0.02)
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=headers).status_code == 200
        while client.get(f"/v1/jobs/{job_id}", headers=headers).json()["status"] == "running":
            assert time.time() < deadline
            time.sleep(0.02)
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "canceled"
    assert job["outputs"] == []
    # The engine stopped between two of its 1,000 steps (20 s of them), not after the last.
    assert engine.steps_run < engine.steps


def test_cancel_of_a_finished_job_is_a_conflict(client, auth, services, room_jpeg):
    job_id = submit(client, auth, room_jpeg).json()["id"]
    drain(services)
    response = client.post(f"/v1/jobs/{job_id}/cancel", headers=auth)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_cancelable"


def test_idempotency_key_returns_the_first_job_and_charges_once(client, services, room_jpeg):
    key, plaintext = services.keys.create("metered", credits=5)
    headers = {"Authorization": f"Bearer {plaintext}", "Idempotency-Key": "order-42"}
    first = submit(client, headers, room_jpeg)
    again = submit(client, headers, room_jpeg)
    assert again.json()["id"] == first.json()["id"]
    assert services.keys.get(key.id).credits_used == 1
    different = submit(client, headers, room_jpeg, style="bohemian")
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "idempotency_key_reused"


def test_sse_streams_status_and_progress_until_the_end(settings, room_jpeg):
    services = build_services(settings, engine=SlowPreviewEngine(steps=8, step_seconds=0.15))
    plaintext = services.keys.create("t")[1]
    headers = {"Authorization": f"Bearer {plaintext}"}
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings, services=services, workers=1, janitor=False),
                    base_url="http://testserver") as client:
        job_id = submit(client, headers, room_jpeg).json()["id"]
        with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = Stream(stream).until_end()
    statuses = [data["status"] for name, data in events if name == "status"]
    percents = [data["progress"] for name, data in events if name == "status"]
    assert statuses[-1] == "succeeded"
    assert "running" in statuses
    assert any(0 < p < 100 for p in percents), percents
    assert events[-1] == ("end", {"id": job_id, "status": "succeeded"})


def test_uploads_are_checked_stored_and_usable_as_image(client, auth, services, room_jpeg):
    upload = client.post("/v1/uploads", headers=auth,
                         files={"file": ("room.jpg", room_jpeg, "image/jpeg")})
    assert upload.status_code == 201, upload.text
    stored = upload.json()
    assert (stored["width"], stored["height"]) == (320, 240)
    job = client.post("/v1/jobs", headers=auth,
                      json={"task": "upscale", "image": stored["id"], "scale": 2})
    assert job.status_code == 202
    drain(services)
    output = client.get(f"/v1/jobs/{job.json()['id']}", headers=auth).json()["outputs"][0]
    assert (output["width"], output["height"]) == (640, 480)


def test_another_keys_upload_id_is_not_usable(client, auth, services, room_jpeg):
    upload_id = client.post("/v1/uploads", headers=auth,
                            files={"file": ("room.jpg", room_jpeg)}).json()["id"]
    other = {"Authorization": f"Bearer {services.keys.create('other')[1]}"}
    response = client.post("/v1/jobs", headers=other,
                           json={"task": "restyle", "image": upload_id, "style": "modern"})
    assert response.status_code == 400


def test_tasks_the_preview_engine_cannot_do_are_refused_at_submit(client, auth, room_jpeg):
    for task in ("empty_room", "sketch_render", "segment"):
        response = client.post("/v1/jobs", headers=auth,
                               json={"task": task, "image": data_uri(room_jpeg)})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "needs_diffusers_engine"
        assert "diffusers" in response.json()["error"]["message"]


def test_bad_requests_get_clear_400s(client, auth, room_jpeg):
    cases = [
        ({"task": "paint_the_moon", "image": data_uri(room_jpeg)}, "task"),
        ({"task": "restyle", "image": data_uri(room_jpeg), "n": 9}, "n"),
        ({"task": "restyle", "image": data_uri(room_jpeg), "style": "gothic_spaceship"}, "unknown style"),
        ({"task": "restyle"}, "needs an input image"),
        ({"task": "recolor", "image": data_uri(room_jpeg), "color": "red"}, "color"),
        ({"task": "restyle", "image": "ftp://example.com/a.jpg"}, "http"),
    ]
    for body, words in cases:
        response = client.post("/v1/jobs", headers=auth, json=body)
        assert response.status_code == 400, (body, response.text)
        assert words in response.json()["error"]["message"], response.json()


def test_catalog_lists_tasks_styles_and_room_types(client):
    catalog = client.get("/v1/catalog").json()
    tasks = {task["id"]: task["supported"] for task in catalog["tasks"]}
    assert tasks["restyle"] is True and tasks["text_to_image"] is False
    assert "modern" in {style["id"] for style in catalog["styles"]}
    assert "living_room" in {room["id"] for room in catalog["room_types"]}


def test_metrics_count_jobs_by_status(client, auth, room_jpeg):
    submit(client, auth, room_jpeg)
    text = client.get("/metrics").text
    assert 'roomrender_jobs{status="queued",task="restyle"} 1.0' in text


def test_openapi_documents_the_native_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/cancel",
                 "/v1/jobs/{job_id}/events", "/v1/uploads", "/v1/catalog"):
        assert path in paths


def test_restarting_loses_no_queued_or_finished_job(settings, room_jpeg):
    first = build_services(settings)
    plaintext = first.keys.create("t")[1]
    owner = first.keys.authenticate(plaintext)
    from roomrender.canonical.models import GenerationRequest

    done = first.jobs.submit(owner, GenerationRequest(task="restyle", image=data_uri(room_jpeg)))
    drain(first)
    waiting = first.jobs.submit(owner, GenerationRequest(task="restyle", image=data_uri(room_jpeg)))
    first.db.dispose()

    second = build_services(settings)
    owner = second.keys.authenticate(plaintext)
    assert second.jobs.get(owner, done.id).status == "succeeded"
    assert second.jobs.get(owner, waiting.id).status == "queued"
    drain(second)
    assert second.jobs.get(owner, waiting.id).status == "succeeded"
    with second.db.connect() as connection:
        assert connection.execute(select(jobs.c.id)).all().__len__() == 2


def test_in_process_worker_threads_serve_jobs(settings):
    services = build_services(settings)
    plaintext = services.keys.create("t")[1]
    headers = {"Authorization": f"Bearer {plaintext}"}
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings, services=services, workers=2, janitor=False),
                    base_url="http://testserver") as client:
        ids = [submit(client, headers, make_room_photo(100 + i, 80)).json()["id"] for i in range(4)]
        deadline = time.time() + 15
        while any(client.get(f"/v1/jobs/{i}", headers=headers).json()["status"] != "succeeded"
                  for i in ids):
            assert time.time() < deadline
            time.sleep(0.05)
    assert threading.active_count() >= 1
