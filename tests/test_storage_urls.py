"""A result URL of this server, sent back as an input, is read from storage, not fetched."""

from __future__ import annotations

from roomrender.storage import LocalStorage
from tests.conftest import BASE_URL, data_uri, drain


def test_local_storage_knows_its_own_urls(tmp_path) -> None:
    storage = LocalStorage(tmp_path, BASE_URL + "/")
    assert storage.key_for_url(storage.url("out-abc.png")) == "out-abc.png"
    assert storage.key_for_url(f"{BASE_URL}/files/out-abc.png?download=1") == "out-abc.png"
    assert storage.key_for_url("https://elsewhere.example/files/out-abc.png") is None
    assert storage.key_for_url(f"{BASE_URL}/files/../secret") is None


def test_a_result_url_is_a_valid_input(client, auth, services, room_jpeg) -> None:
    first = client.post("/v1/jobs", headers=auth, json={
        "task": "restyle", "image": data_uri(room_jpeg), "style": "modern"}).json()
    drain(services)
    result_url = client.get(f"/v1/jobs/{first['id']}", headers=auth).json()["outputs"][0]["url"]
    # http://testserver cannot be fetched over the network: this only works from storage.
    second = client.post("/v1/jobs", headers=auth, json={
        "task": "restyle", "image": result_url, "style": "industrial_loft"})
    assert second.status_code == 202, second.text
    drain(services)
    assert client.get(f"/v1/jobs/{second.json()['id']}", headers=auth).json()["status"] == "succeeded"
