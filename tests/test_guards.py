"""Limits on what one client can take: body size (while it streams in), requests per key per
second, queued + running jobs per key; each answered in the dialect's own shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from roomrender.app import create_app
from tests.conftest import BASE_URL, data_uri, make_room_photo
from tests.rate_windows import away_from_window_edge

LIMIT = 4096


@pytest.fixture
def small_bodies(services) -> Iterator[TestClient]:
    settings = services.settings.model_copy(update={"max_body_bytes": LIMIT})
    app = create_app(settings, services=services, workers=0, janitor=False, webhooks=False)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


def chunks(total: int, size: int = 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


BIG_JSON = b'{"task": "text_to_image", "prompt": "' + b"a" * (LIMIT * 3) + b'"}'


@pytest.mark.parametrize("path,shape", [("/v1/jobs", "native"), ("/api/v1/generate/text-to-image",
                                                                   "spacely"),
                                        ("/v2/generate", "luw"), ("/v1/nothing-here", "native")])
def test_a_declared_big_body_is_refused_before_auth_in_the_dialect_shape(small_bodies, path, shape):
    answer = small_bodies.post(path, content=BIG_JSON, headers={"Content-Type": "application/json"})
    if shape == "native":
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "body_too_large"
    elif shape == "spacely":
        assert answer.status_code == 400  # Spacely documents no 413
        assert answer.json()["error"]["code"] == "body_too_large"
    else:
        assert answer.status_code == 400 and answer.json()["status"] is False


@pytest.mark.parametrize("path", ["/v1/jobs", "/v2/generate", "/api/v1/generate/text-to-image",
                                  "/v2/upload"])
def test_a_chunked_body_is_cut_off_while_it_streams_in(small_bodies, auth, path):
    headers = {**auth, "X-API-KEY": auth["Authorization"][7:], "Content-Type": "application/json"}
    answer = small_bodies.post(path, content=chunks(LIMIT * 4), headers=headers)
    assert answer.status_code in (400, 413)
    body = answer.json()
    if body.get("status") is False:  # Luw's shape
        assert "larger than" in body["error"]
    else:
        assert body["error"]["code"] == "body_too_large"


def test_multipart_uploads_are_capped_too(small_bodies, auth):
    photo = make_room_photo(320, 240, fmt="PNG")
    assert len(photo) > LIMIT
    native = small_bodies.post("/v1/uploads", headers=auth, files={"file": ("room.png", photo)})
    assert native.status_code == 413 and native.json()["error"]["code"] == "body_too_large"
    luw = small_bodies.post("/v2/upload", headers=auth, files={"filename": ("room.png", photo)})
    assert luw.status_code == 400 and luw.json()["status"] is False


def test_small_bodies_pass(small_bodies, auth):
    answer = small_bodies.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": "x"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] != "body_too_large"


# -- requests per key ---------------------------------------------------------------------------

@pytest.fixture
def limited(services) -> Iterator[TestClient]:
    settings = services.settings.model_copy(update={"rate_limit": "5/hour"})
    app = create_app(settings, services=services, workers=0, janitor=False, webhooks=False)
    with TestClient(app, base_url=BASE_URL) as client:
        away_from_window_edge()
        yield client


def test_a_key_past_its_rate_is_told_when_to_retry_in_each_dialect(limited, services):
    plaintext = services.keys.create("busy")[1]
    bearer = {"Authorization": f"Bearer {plaintext}"}
    answers = [limited.get("/v1/account", headers=bearer) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    native = limited.get("/v1/jobs", headers=bearer)
    assert native.status_code == 429 and native.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(native.headers["retry-after"]) <= 3600
    spacely = limited.get("/api/v1/generate/poll-result?refId=x", headers={"X-API-KEY": plaintext})
    assert spacely.status_code == 429 and spacely.json()["error"]["code"] == "rate_limited"
    assert spacely.headers["retry-after"]
    luw = limited.get("/v2/credits", headers=bearer)
    assert luw.status_code == 429 and luw.json()["status"] is False and luw.headers["retry-after"]
    # Another key has its own count.
    other = {"Authorization": f"Bearer {services.keys.create('other')[1]}"}
    assert limited.get("/v1/account", headers=other).status_code == 200


def test_a_key_may_have_its_own_rate(limited, services):
    plaintext = services.keys.create("vip", rate_limit="20/hour")[1]
    bearer = {"Authorization": f"Bearer {plaintext}"}
    assert [limited.get("/v1/account", headers=bearer).status_code for _ in range(20)] == [200] * 20
    assert limited.get("/v1/account", headers=bearer).status_code == 429


def test_the_poll_route_counts_too(limited, services, room_jpeg):
    plaintext = services.keys.create("poller")[1]
    bearer = {"Authorization": f"Bearer {plaintext}"}
    codes = [limited.get("/v1/jobs/00000000-0000-0000-0000-000000000000", headers=bearer).status_code
             for _ in range(6)]
    assert codes == [404] * 5 + [429]


# -- queued + running jobs per key --------------------------------------------------------------

def test_a_key_may_have_only_so_many_jobs_in_flight(client, services):
    plaintext = services.keys.create("bulk", max_active_jobs=2)[1]
    bearer = {"Authorization": f"Bearer {plaintext}"}
    photo = data_uri(make_room_photo(64, 48))
    body = {"task": "restyle", "image": photo}
    assert [client.post("/v1/jobs", headers=bearer, json=body).status_code
            for _ in range(2)] == [202, 202]
    third = client.post("/v1/jobs", headers=bearer, json=body)
    assert third.status_code == 429 and third.json()["error"]["code"] == "too_many_active_jobs"
    assert third.headers["retry-after"]
    luw = client.post("/v2/generate", headers=bearer, json={"model": "interior", "image": photo,
                                                            "styles": "Modern"})
    assert luw.status_code == 429 and luw.json()["status"] is False
    spacely = client.post("/api/v1/generate/standard", headers={"X-API-KEY": plaintext}, json={
        "model": "spacely-v1", "imageUrl": photo, "spaceType": "bedroom", "spaceStyle": "modern",
        "renovateType": "residential"})
    assert spacely.status_code == 429
    # Once one has finished, the key may submit again.
    from tests.conftest import drain

    drain(services)
    assert client.post("/v1/jobs", headers=bearer, json=body).status_code == 202


def test_the_server_default_cap_applies_to_keys_without_their_own(client, services, auth):
    services.settings.max_active_jobs = 1
    photo = data_uri(make_room_photo(64, 48))
    assert client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": photo}
                       ).status_code == 202
    assert client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": photo}
                       ).status_code == 429


def test_bad_key_limits_are_refused_when_the_key_is_made(services):
    with pytest.raises(ValueError, match="rate limit"):
        services.keys.create("x", rate_limit="lots")
    with pytest.raises(ValueError):
        services.keys.create("x", max_active_jobs=0)


@pytest.mark.slow
def test_a_key_may_hold_only_so_many_event_streams(services, room_jpeg):
    import time

    import httpx

    from tests.servers import free_port, run_uvicorn

    settings = services.settings.model_copy(update={"max_event_streams_per_key": 2})
    app = create_app(settings, services=services, workers=0, janitor=False, webhooks=False)
    plaintext = services.keys.create("streams")[1]
    bearer = {"Authorization": f"Bearer {plaintext}"}
    other = {"Authorization": f"Bearer {services.keys.create('other')[1]}"}
    with run_uvicorn(app, free_port()) as base, httpx.Client(base_url=base, timeout=10) as client:
        job = client.post("/v1/jobs", headers=bearer, json={"task": "restyle",
                                                            "image": data_uri(room_jpeg)}).json()
        path = f"/v1/jobs/{job['id']}/events"
        first = client.send(client.build_request("GET", path, headers=bearer), stream=True)
        second = client.send(client.build_request("GET", path, headers=bearer), stream=True)
        assert first.status_code == second.status_code == 200
        third = client.get(path, headers=bearer)
        assert third.status_code == 429 and third.json()["error"]["code"] == "too_many_streams"
        assert third.headers["retry-after"]
        # Another key is not held back; a closed stream gives its slot back.
        other_job = client.post("/v1/jobs", headers=other, json={
            "task": "restyle", "image": data_uri(room_jpeg)}).json()
        with client.stream("GET", f"/v1/jobs/{other_job['id']}/events", headers=other) as mine:
            assert mine.status_code == 200
        first.close()
        deadline = time.monotonic() + 5
        while True:
            with client.stream("GET", path, headers=bearer) as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "a closed stream kept its slot"
            time.sleep(0.2)
        second.close()


def test_one_stream_cap_per_key_counts_every_dialects_streams(services, room_jpeg):
    import httpx

    from tests.servers import free_port, run_uvicorn

    settings = services.settings.model_copy(update={"max_event_streams_per_key": 2})
    app = create_app(settings, services=services, workers=0, janitor=False, webhooks=False)
    bearer = {"Authorization": f"Bearer {services.keys.create('streams')[1]}"}
    with run_uvicorn(app, free_port()) as base, httpx.Client(base_url=base, timeout=10) as client:
        job = client.post("/v1/jobs", headers=bearer, json={"task": "restyle",
                                                            "image": data_uri(room_jpeg)}).json()
        prediction = client.post("/v1/models/roomrender/restyle/predictions", headers=bearer,
                                 json={"input": {"image": data_uri(room_jpeg)}}).json()
        stream = f"/v1/predictions/{prediction['id']}/stream"
        native = client.send(client.build_request("GET", f"/v1/jobs/{job['id']}/events",
                                                  headers=bearer), stream=True)
        replicate = client.send(client.build_request("GET", stream, headers=bearer), stream=True)
        assert native.status_code == replicate.status_code == 200
        third = client.get(stream, headers=bearer)
        assert third.status_code == 429 and third.json()["status"] == 429  # Replicate's shape
        assert third.headers["retry-after"]
        replicate.close()
        native.close()
