"""Every dialect's throttling (429) and unavailability (503, or the dialect's 500) answers say when
to come back: `Retry-After`, in that dialect's own error shape."""

from __future__ import annotations

import pytest

from roomrender.canonical.errors import StorageUnavailable
from tests.conftest import data_uri, make_room_photo

PHOTO = data_uri(make_room_photo(64, 48))


def submits(plaintext: str) -> dict[str, tuple[str, dict[str, str], dict[str, object], str]]:
    """dialect: (path, headers, body, the key its error body holds)."""
    bearer = {"Authorization": f"Bearer {plaintext}"}
    return {
        "native": ("/v1/jobs", bearer, {"task": "restyle", "image": PHOTO}, "error"),
        "spacely": ("/api/v1/generate/standard", {"X-API-KEY": plaintext},
                    {"model": "spacely-v1", "imageUrl": PHOTO, "spaceType": "bedroom",
                     "spaceStyle": "modern", "renovateType": "residential"}, "error"),
        "luw": ("/v2/generate", bearer, {"model": "interior", "image": PHOTO, "styles": "Modern"},
                "status"),
        "replicate": ("/v1/models/roomrender/restyle/predictions", bearer,
                      {"input": {"image": PHOTO}}, "detail"),
    }


@pytest.mark.parametrize("dialect", ["native", "spacely", "luw", "replicate"])
def test_a_throttled_request_says_when_to_retry(client, services, dialect):
    plaintext = services.keys.create("busy", rate_limit="1/minute")[1]
    path, headers, body, shape = submits(plaintext)[dialect]
    client.post(path, headers=headers, json=body)
    throttled = client.post(path, headers=headers, json=body)
    assert throttled.status_code == 429
    assert shape in throttled.json()
    assert int(throttled.headers["retry-after"]) >= 1


@pytest.mark.parametrize("dialect", ["native", "spacely", "luw", "replicate"])
def test_a_full_store_is_unavailable_in_the_dialects_shape_with_retry_after(
        client, api_key, services, monkeypatch, dialect):
    def full(*_args: object, **_kwargs: object) -> None:
        raise StorageUnavailable("files cannot be stored now: no space left on device")

    monkeypatch.setattr(services.files.storage, "put", full)
    path, headers, body, shape = submits(api_key)[dialect]
    answer = client.post(path, headers=headers, json=body)
    # Spacely and Luw document no 503: their 500, in their shape.
    assert answer.status_code == (503 if dialect in ("native", "replicate") else 500)
    assert shape in answer.json()
    assert "no space" in answer.text
    assert int(answer.headers["retry-after"]) >= 1
