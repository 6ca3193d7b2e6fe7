"""Hostile input answers a 400 in the dialect's own shape, never a 500; and a request refused at
any step leaves nothing behind (no stored file, no row)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from roomrender.canonical.models import GenerationRequest
from roomrender.db.tables import files
from tests.conftest import data_uri, make_room_photo

SURROGATE = '"\\ud800x"'  # a lone surrogate, as a JSON escape


def raw_json(client, path: str, headers: dict[str, str], body: str):
    return client.post(path, headers={**headers, "Content-Type": "application/json"},
                       content=body.encode("ascii"))


@pytest.fixture
def spacely(api_key: str) -> dict[str, str]:
    return {"X-API-KEY": api_key}


@pytest.mark.parametrize("field", ["prompt", "style", "image", "webhook", "palette", "negative_prompt"])
def test_a_lone_surrogate_in_a_native_string_is_a_400(client, auth, field):
    body = '{"task": "text_to_image", "prompt": "a room", "' + field + '": ' + SURROGATE + "}"
    answer = raw_json(client, "/v1/jobs", auth, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] in ("invalid_request", "url_refused")


def test_a_lone_surrogate_in_vendor_strings_is_a_400_in_their_shapes(client, auth, spacely):
    answer = raw_json(client, "/api/v1/generate/text-to-image", spacely,
                      '{"prompt": ' + SURROGATE + "}")
    assert answer.status_code == 400 and "error" in answer.json()
    answer = raw_json(client, "/api/v1/generate/empty-room", spacely,
                      '{"imageUrl": ' + SURROGATE + "}")
    assert answer.status_code == 400 and "error" in answer.json()
    for body in ('{"processing_url": ' + SURROGATE + "}",
                 '{"model": "interior", "image": ' + SURROGATE + "}",
                 '{"model": "interior", "image": "http://x.test/a.jpg", "prompt": ' + SURROGATE + "}",
                 '{"model": "interior", "image": "http://x.test/a.jpg", "webhook": ' + SURROGATE + "}"):
        answer = raw_json(client, "/v2/generate", auth, body)
        assert answer.status_code in (400, 404), (body, answer.text)
        assert answer.json()["status"] is False


@pytest.mark.parametrize("url", ["http://[::1/x", "http://" + "a" * 70 + ".com/room.jpg",
                                 "http://a..b/room.jpg", "http://exa\tmple.com/room.jpg"])
def test_urls_that_do_not_parse_are_a_400_in_every_dialect(client, auth, spacely, url):
    native = client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": url})
    assert native.status_code == 400 and native.json()["error"]["code"] == "url_refused"
    vendor = client.post("/api/v1/generate/standard", headers=spacely, json={
        "model": "spacely-v1", "imageUrl": url, "spaceType": "bedroom", "spaceStyle": "modern",
        "renovateType": "residential"})
    assert vendor.status_code == 400 and vendor.json()["error"]["code"] == "url_refused"
    luw = client.post("/v2/generate", headers=auth, json={"model": "interior", "image": url})
    assert luw.status_code == 400 and luw.json()["status"] is False


def test_integers_past_64_bits_are_a_400(client, auth):
    for offset in (2**63, 2**64, 10**400):
        answer = client.get(f"/v1/jobs?offset={offset}", headers=auth)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_request"
    answer = client.get(f"/v1/jobs?limit={2**63}", headers=auth)
    assert answer.status_code == 400
    big = "9" * 400
    for name, model in (("seed", "interior"), ("precise", "interior"), ("hd", "enhance"),
                        ("num_images", "interior")):
        for value in (big, int(big)):
            body = json.dumps({"model": model, "image": "http://x.test/a.jpg", name: value})
            answer = raw_json(client, "/v2/generate", auth, body)
            assert answer.status_code == 400, (name, type(value), answer.text)
            assert answer.json()["status"] is False


def test_a_big_seed_is_exact_or_refused_never_rounded(client, auth, services):
    from roomrender.api.luw.requests import to_request

    assert to_request({"model": "interior", "image": "x", "seed": "4294967295"}).seed == 2**32 - 1
    assert to_request({"model": "interior", "image": "x", "seed": 2**32 - 1}).seed == 2**32 - 1


def test_ids_that_cannot_be_jobs_are_not_found(client, auth, spacely):
    assert client.get("/v1/jobs/%ED%A0%80", headers=auth).status_code == 404
    assert client.get("/v1/jobs/" + "a" * 5000, headers=auth).status_code == 404
    answer = client.get("/api/v1/generate/poll-result?refId=%ED%A0%80", headers=spacely)
    assert answer.status_code == 400 and "error" in answer.json()


def test_free_strings_and_lists_have_length_limits_in_every_dialect(client, auth, spacely):
    too_long = {"palette": "#112233," * 100, "style": "m" * 65, "materials": ["oak"] * 17,
                "prompt": "p" * 2001, "room_type": "r" * 65}
    for name, value in too_long.items():
        answer = client.post("/v1/jobs", headers=auth,
                             json={"task": "text_to_image", "prompt": "a room", name: value})
        assert answer.status_code == 400, name
    answer = client.post("/api/v1/generate/empty-room", headers=spacely,
                         json={"imageUrl": "http://x.test/a.jpg", "spaceType": "x" * 100_000})
    assert answer.status_code == 400 and len(answer.content) < 10_000
    answer = client.post("/api/v1/generate/empty-room", headers=spacely,
                         json={"imageUrl": "http://x.test/a.jpg",
                               "materialsIds": ["paper_wallpaper"] * 17})
    assert answer.status_code == 400
    answer = client.post("/v2/generate", headers=auth, json={
        "model": "interior", "image": "http://x.test/a.jpg", "styles": "Modern," * 500})
    assert answer.status_code == 400 and answer.json()["status"] is False
    answer = client.post("/v2/generate", headers=auth, json={
        "model": "interior", "image": "http://x.test/a.jpg", "styles": "X" * 100_000})
    assert answer.status_code == 400 and len(answer.content) < 10_000


# -- nothing of a refused request stays -----------------------------------------------------------

def stored(services) -> tuple[int, int]:
    """(rows in `files`, files under the storage folder)."""
    with services.db.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(files)).scalar_one()
    root = Path(services.storage.root)
    return rows, sum(1 for path in root.rglob("*") if path.is_file())


def test_a_refused_request_leaves_no_file(client, auth, services):
    photo = data_uri(make_room_photo())
    before = stored(services)
    refused = [
        {"task": "restyle", "image": photo, "extra_images": [photo, "no-such-upload"]},
        {"task": "edit", "image": photo, "mask": photo, "reference_image": "http://[::1/x",
         "prompt": "x"},
        {"task": "upscale", "image": photo, "scale": 8},
    ]
    services.settings.max_output_pixels = 1_000_000
    for body in refused:
        answer = client.post("/v1/jobs", headers=auth, json=body)
        assert answer.status_code == 400, answer.text
        assert stored(services) == before, body


def test_a_submit_refused_after_storing_its_inputs_deletes_them(client, auth, services,
                                                                monkeypatch):
    photo = data_uri(make_room_photo())
    before = stored(services)
    # Credits spent by another request between the check and the charge.
    monkeypatch.setattr(services.ledger, "charge", lambda *args: False)
    answer = client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": photo})
    assert answer.status_code == 402
    assert stored(services) == before


def test_the_loser_of_an_idempotency_race_leaves_no_file(client, auth, services, monkeypatch):
    photo = data_uri(make_room_photo())
    body = {"task": "restyle", "image": photo}
    first = client.post("/v1/jobs", headers={**auth, "Idempotency-Key": "k1"}, json=body)
    assert first.status_code == 202
    after_first = stored(services)
    # The race: the first request's row was not visible yet when the second looked for it.
    real = services.queue.by_idempotency_key
    calls = []

    def not_yet(owner_id: str, key: str):
        calls.append(key)
        return None if len(calls) == 1 else real(owner_id, key)

    monkeypatch.setattr(services.queue, "by_idempotency_key", not_yet)
    second = client.post("/v1/jobs", headers={**auth, "Idempotency-Key": "k1"}, json=body)
    assert second.status_code == 202 and second.json()["id"] == first.json()["id"]
    assert stored(services) == after_first


def test_storage_failing_midway_leaves_no_file(client, auth, services, monkeypatch):
    photo = data_uri(make_room_photo())
    before = stored(services)
    real_put = services.storage.put
    puts = []

    def second_put_fails(key: str, data: bytes, content_type: str) -> None:
        puts.append(key)
        if len(puts) == 2:
            raise RuntimeError("the store broke")  # any failure at all
        real_put(key, data, content_type)

    monkeypatch.setattr(services.storage, "put", second_put_fails)
    owner = services.keys.authenticate(auth["Authorization"][7:])
    with pytest.raises(RuntimeError, match="the store broke"):
        services.jobs.submit(owner, GenerationRequest(task="restyle", image=photo,
                                                      extra_images=[photo]))
    assert len(puts) == 2
    assert stored(services) == before


def test_json_nested_too_deep_is_a_400_in_every_dialect(client, auth, spacely):
    deep = "[" * 100_000 + "]" * 100_000
    for path, headers in (("/v1/jobs", auth), ("/v2/generate", auth), ("/v2/results", auth),
                          ("/api/v1/generate/text-to-image", spacely)):
        answer = raw_json(client, path, headers, deep)
        assert answer.status_code == 400, (path, answer.text[:200])
