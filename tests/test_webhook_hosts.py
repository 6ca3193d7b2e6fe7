"""A webhook URL whose host no DNS name can be (a space in it, and the like) could never be
delivered: every dialect refuses it at submit, and no job is created."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from roomrender.db.tables import jobs
from tests.conftest import data_uri, make_room_photo

PHOTO = data_uri(make_room_photo(64, 48))
MALFORMED = [
    "https://exa mple.com/hook",
    "https://example .com/hook",
    "https://ex%20ample.com/hook",
    "https://example..com/hook",
    "https://-example.com/hook",
    "https://example-.com/hook",
    "https://.example.com/hook",
    'https://exa"mple.com/hook',
    "https://exa<mple>.com/hook",
    "https://exa\\mple.com/hook",
    "https://exa{mple}.com/hook",
    "https://user@exa mple.com/hook",
    "https://exa|mple.com/hook",
    "https://" + "a" * 64 + ".com/hook",
]


def submit(client, dialect: str, plaintext: str, webhook: str):
    bearer = {"Authorization": f"Bearer {plaintext}"}
    if dialect == "native":
        return client.post("/v1/jobs", headers=bearer,
                           json={"task": "restyle", "image": PHOTO, "webhook": webhook})
    if dialect == "spacely":
        return client.post("/api/v1/generate/standard", headers={"X-API-KEY": plaintext},
                           json={"model": "spacely-v1", "imageUrl": PHOTO, "spaceType": "bedroom",
                                 "spaceStyle": "modern", "renovateType": "residential",
                                 "webhookUrl": webhook})
    if dialect == "luw":
        return client.post("/v2/generate", headers=bearer,
                           json={"model": "interior", "image": PHOTO, "styles": "Modern",
                                 "webhook": webhook})
    return client.post("/v1/models/roomrender/restyle/predictions", headers=bearer,
                       json={"input": {"image": PHOTO}, "webhook": webhook})


@pytest.mark.parametrize("dialect", ["native", "spacely", "luw", "replicate"])
def test_webhook_urls_with_invalid_hosts_are_refused_at_submit(client, api_key, services, dialect):
    # Its form alone refuses them: no resolver is asked (private URLs allowed skips resolving).
    services.settings.allow_private_urls = True
    for webhook in MALFORMED:
        answer = submit(client, dialect, api_key, webhook)
        assert answer.status_code in (400, 422), (webhook, answer.status_code, answer.text)
        assert "webhook" in answer.text.lower() or "url" in answer.text.lower(), answer.text
    with services.db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(jobs)).scalar_one() == 0
    # A valid host, and one with an underscore as real hosts have, are still taken.
    for webhook in ("http://127.0.0.1:9/hook", "http://my_host.localhost:9/hook"):
        answer = submit(client, dialect, api_key, webhook)
        assert answer.status_code in (200, 201, 202), (webhook, answer.text)
