"""The Idempotency-Key header, read by one dependency wherever a dialect takes it (native /v1/jobs,
Luw /v2/generate): a repeat answers the first job; a key past 255 characters is refused before
anything runs, as a 400 in the dialect's own shape."""

from __future__ import annotations

from sqlalchemy import func, select

from roomrender.db.tables import jobs
from tests.conftest import data_uri

TOO_LONG = "k" * 256
LONGEST = "k" * 255


def job_count(services) -> int:
    with services.db.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(jobs)).scalar_one())


def test_native_refuses_a_key_past_255_characters_in_its_shape(client, auth, services, room_jpeg):
    body = {"task": "restyle", "image": data_uri(room_jpeg), "style": "modern"}
    refused = client.post("/v1/jobs", headers={**auth, "Idempotency-Key": TOO_LONG}, json=body)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_request" and "idempotency-key" in error["message"].lower()
    assert job_count(services) == 0
    first = client.post("/v1/jobs", headers={**auth, "Idempotency-Key": LONGEST}, json=body)
    again = client.post("/v1/jobs", headers={**auth, "Idempotency-Key": LONGEST}, json=body)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and job_count(services) == 1


def test_luw_refuses_a_key_past_255_characters_in_its_shape(client, auth, services, room_jpeg):
    fields = {"model": "interior", "image": data_uri(room_jpeg), "styles": "Modern"}
    refused = client.post("/v2/generate", headers={**auth, "Idempotency-Key": TOO_LONG}, data=fields)
    assert refused.status_code == 400
    body = refused.json()
    assert body["status"] is False and "idempotency-key" in body["error"].lower()
    assert set(body) == {"status", "error"}
    assert job_count(services) == 0
    first = client.post("/v2/generate", headers={**auth, "Idempotency-Key": LONGEST}, data=fields)
    again = client.post("/v2/generate", headers={**auth, "Idempotency-Key": LONGEST}, data=fields)
    assert first.status_code == again.status_code == 200
    assert first.json()["processing_url"] == again.json()["processing_url"]
    assert job_count(services) == 1
