"""Results live at unguessable URLs under the data folder and expire on schedule."""

from __future__ import annotations

import time

from roomrender.storage.local import LocalStorage
from tests.conftest import data_uri, drain


def test_outputs_are_files_in_the_data_folder_at_unguessable_urls(client, auth, services, room_jpeg):
    job_id = client.post("/v1/jobs", headers=auth, json={
        "task": "restyle", "image": data_uri(room_jpeg)}).json()["id"]
    drain(services)
    output = client.get(f"/v1/jobs/{job_id}", headers=auth).json()["outputs"][0]
    key = output["url"].rsplit("/", 1)[1]
    assert len(key.split("-", 1)[1].split(".")[0]) == 32  # 128 random bits
    assert isinstance(services.storage, LocalStorage)
    assert services.storage.local_path(key).is_relative_to(services.settings.data_dir.resolve())
    assert client.get(output["url"].replace(key[5:9], "0000")).status_code == 404
    assert client.get("/files/..%2Froomrender.db").status_code == 404


def test_results_expire_after_the_configured_time(settings, room_jpeg, monkeypatch):
    from fastapi.testclient import TestClient

    from roomrender.app import create_app
    from roomrender.services import build_services

    settings = settings.model_copy(update={"result_ttl_seconds": 60})
    services = build_services(settings)
    headers = {"Authorization": f"Bearer {services.keys.create('t')[1]}"}
    with TestClient(create_app(settings, services=services, janitor=False),
                    base_url="http://testserver") as client:
        job_id = client.post("/v1/jobs", headers=headers, json={
            "task": "restyle", "image": data_uri(room_jpeg)}).json()["id"]
        drain(services)
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        url = job["outputs"][0]["url"]
        assert job["expires_at"] is not None
        assert client.get(url).status_code == 200
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + 61)  # the TTL has passed
        assert client.get(url).status_code == 404
        assert client.get(f"/v1/jobs/{job_id}", headers=headers).json()["outputs"] == []
        assert services.files.delete_expired() >= 1
        key = url.rsplit("/", 1)[1]
        assert not (services.storage.root / key[:2] / key).exists()


def test_results_are_kept_by_default(client, auth, services, room_jpeg):
    job_id = client.post("/v1/jobs", headers=auth, json={
        "task": "restyle", "image": data_uri(room_jpeg)}).json()["id"]
    drain(services)
    assert client.get(f"/v1/jobs/{job_id}", headers=auth).json()["expires_at"] is None


def test_inputs_go_with_the_results_of_their_job(settings, room_jpeg):
    from sqlalchemy import select

    from roomrender.canonical.models import GenerationRequest
    from roomrender.db.tables import files
    from roomrender.services import build_services

    services = build_services(settings.model_copy(update={"result_ttl_seconds": 60}))
    owner = services.keys.authenticate(services.keys.create("t")[1])
    done = services.jobs.submit(owner, GenerationRequest(task="restyle", image=data_uri(room_jpeg)))
    drain(services)
    waiting = services.jobs.submit(owner, GenerationRequest(task="restyle", image=data_uri(room_jpeg)))
    input_of = {job.id: job.request.image for job in (services.jobs.get(owner, done.id),
                                                      services.jobs.get(owner, waiting.id))}

    assert services.new_janitor().expire_inputs_of_finished_jobs(now=time.time() + 30) == 0
    assert services.new_janitor().expire_inputs_of_finished_jobs(now=time.time() + 61) == 1
    assert services.files.delete_expired(now=time.time() + 62) >= 2  # the input and the output
    with services.db.connect() as connection:
        kept = set(connection.execute(select(files.c.key)).scalars())
    assert input_of[done.id] not in kept
    assert input_of[waiting.id] in kept
