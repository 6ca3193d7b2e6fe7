"""What the API says is what is so: a canceled job is not 100% done, a job with no worker to run
it says so instead of an ETA, a key without its scheme and a body that is not JSON are told what
is wrong and where, in each dialect's shape."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.services import Services, build_services
from tests.conftest import BASE_URL, data_uri, drain

INTERIOR_VERSION = "76604baddc85b1b4616e1c6475eca080da339c8875bd4996705440484a6eac38"
NO_WORKER_AFTER = 1.0


@pytest.fixture
def room(room_jpeg: bytes) -> str:
    return data_uri(room_jpeg)


# -- a canceled job is not done ------------------------------------------------------------------

def test_a_job_canceled_after_its_last_step_reports_no_100_in_any_dialect(client, auth, api_key, services,
                                                                          room):
    spacely_key = {"X-API-KEY": api_key}
    ids = {
        "native": client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": room}).json()["id"],
        "luw": client.post("/v2/generate", headers=auth,
                           data={"model": "interior", "image": room}).json()["processing_url"],
        "spacely": client.post("/api/v1/generate/standard", headers=spacely_key, json={
            "model": "spacely-v1", "imageUrl": room, "spaceType": "living_room", "spaceStyle": "modern",
            "renovateType": "residential"}).json()["data"],
        "replicate": client.post("/v1/predictions", headers=auth, json={
            "version": INTERIOR_VERSION, "input": {"image": room, "prompt": "a room"}}).json()["id"],
    }
    # A worker takes them, its engine reports each one's last step...
    claim = services.queue.claim("worker-1", services.engine.name)
    assert claim is not None and {row.id for row in claim.rows} == set(ids.values())
    services.queue.set_progress(claim.token, dict.fromkeys(ids.values(), 1.0))
    # ...but a job still storing its outputs is not done either.
    assert client.get(f"/v1/jobs/{ids['native']}", headers=auth).json()["progress"] == 99
    for job_id in ids.values():
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code == 200
        assert services.queue.cancel_running(job_id, claim.token)  # the worker sees the request

    native = client.get(f"/v1/jobs/{ids['native']}", headers=auth).json()
    assert native["status"] == "canceled" and native["progress"] < 100
    luw = client.post("/v2/results", headers=auth, data={"processing_url": ids["luw"]}).json()
    assert luw["status"] is False and luw["progress"]["percent"] < 100
    spacely = client.get("/api/v1/generate/poll-result", params={"refId": ids["spacely"]},
                         headers=spacely_key).json()["data"]
    assert spacely["status"] == "failed" and spacely["progress"] < 100
    prediction = client.get(f"/v1/predictions/{ids['replicate']}", headers=auth).json()
    assert prediction["status"] == "canceled"
    assert "100%" not in prediction["logs"] and "canceled" in prediction["logs"]


# -- a job that waits for a worker says so -------------------------------------------------------

@pytest.fixture
def quick(settings: Settings) -> Iterator[tuple[TestClient, Services, dict[str, str]]]:
    """An API with no worker, that tells a job waits for one after NO_WORKER_AFTER seconds."""
    built = build_services(settings.model_copy(update={"no_worker_after_seconds": NO_WORKER_AFTER}))
    app = create_app(built.settings, services=built, workers=0, janitor=False)
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client, built, {"Authorization": f"Bearer {built.keys.create('t')[1]}"}
    built.db.dispose()


@pytest.mark.slow
def test_a_job_with_no_worker_running_says_it_waits_for_one(quick, room):
    client, services, auth = quick
    job = client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": room}).json()
    # Just queued: it waits for its turn, with an estimate.
    assert job["waiting_for"] is None and job["eta_seconds"] > 0
    assert "jobs_waiting_for" not in client.get("/readyz").json()
    time.sleep(NO_WORKER_AFTER + 0.2)

    waiting = client.get(f"/v1/jobs/{job['id']}", headers=auth).json()
    assert waiting["status"] == "queued" and waiting["eta_seconds"] is None
    assert "none has taken a job" in waiting["waiting_for"] and "roomrender worker" in waiting["waiting_for"]
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["jobs_waiting_for"] == waiting["waiting_for"]
    prediction = client.post("/v1/predictions", headers=auth, json={
        "version": INTERIOR_VERSION, "input": {"image": room, "prompt": "a room"}}).json()
    time.sleep(NO_WORKER_AFTER + 0.2)
    logs = client.get(f"/v1/predictions/{prediction['id']}", headers=auth).json()["logs"]
    assert "waiting for a worker: none has taken a job" in logs

    # A worker that is busy with another job: the queued ones wait for their turn only.
    claim = services.queue.claim("worker-1", services.engine.name, max_images=1)
    assert claim is not None
    time.sleep(NO_WORKER_AFTER / 2 + 0.05)
    other = [job_id for job_id in (job["id"], prediction["id"]) if job_id != claim.rows[0].id][0]
    behind = client.get(f"/v1/jobs/{other}", headers=auth).json()
    assert behind["status"] == "queued" and behind["waiting_for"] is None and behind["eta_seconds"] > 0
    services.queue.release(claim.token)
    drain(services)
    assert "jobs_waiting_for" not in client.get("/readyz").json()


# -- a key without its scheme --------------------------------------------------------------------

def test_a_key_sent_without_bearer_is_told_the_scheme_is_missing(client, api_key):
    bare = {"Authorization": api_key}
    native = client.get("/v1/jobs", headers=bare)
    assert native.status_code == 401
    assert "no scheme" in native.json()["error"]["message"] and "Bearer" in native.json()["error"]["message"]
    replicate = client.get("/v1/predictions", headers=bare)
    assert replicate.status_code == 401 and replicate.json()["title"] == "Unauthenticated"
    assert "no scheme" in replicate.json()["detail"]
    luw = client.get("/v2/credits", headers=bare)
    assert luw.status_code == 401
    assert luw.json()["errors"]["auth"][0] == "Wrong credentials or expired token"
    assert "no scheme" in luw.json()["errors"]["auth"][1]
    spacely = client.get("/api/v1/generate/poll-result", params={"refId": "x"}, headers=bare)
    assert spacely.status_code == 401 and "no scheme" in spacely.json()["error"]["message"]
    # Another scheme is named; the key with its scheme works.
    basic = client.get("/v1/jobs", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401 and "'Basic' is not accepted" in basic.json()["error"]["message"]
    assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {api_key}"}).status_code == 200


# -- a body that is not JSON ---------------------------------------------------------------------

BROKEN = b'{"task": "restyle",\n "image": }'  # line 2, column 11: a value is missing


def test_a_body_that_is_not_json_is_told_where_in_words(client, auth, api_key):
    json_auth = {**auth, "Content-Type": "application/json"}
    native = client.post("/v1/jobs", headers=json_auth, content=BROKEN)
    assert native.status_code == 400
    assert native.json()["error"]["message"] == (
        "the request body is not valid JSON: expecting value at line 2, column 11")
    replicate = client.post("/v1/predictions", headers=json_auth, content=BROKEN)
    assert replicate.status_code == 400 and "at line 2, column 11" in replicate.json()["detail"]
    luw = client.post("/v2/generate", headers=json_auth, content=BROKEN)
    assert luw.status_code == 400 and "at line 2, column 11" in luw.json()["error"]
    spacely = client.post("/api/v1/generate/standard", content=BROKEN,
                          headers={"X-API-KEY": api_key, "Content-Type": "application/json"})
    assert spacely.status_code == 400 and "at line 2, column 11" in spacely.json()["error"]["message"]
