"""This server's own file URLs (`/files/<id>`, Luw's `final_url`) name files of a key like their
ids do: another key cannot use them as inputs; their answers carry `nosniff`."""

from __future__ import annotations

from tests.conftest import make_room_photo


def test_another_keys_upload_cannot_be_used_by_its_url(client, auth, services):
    upload = client.post("/v1/uploads", headers=auth,
                         files={"file": ("room.jpg", make_room_photo(64, 48))}).json()
    luw = client.post("/v2/upload", headers=auth, data={"filename": "room.jpg"}).json()
    assert client.put(luw["signed_url"], content=make_room_photo(64, 48)).status_code == 200
    other = {"Authorization": f"Bearer {services.keys.create('other')[1]}"}
    for ref in (upload["id"], upload["url"], luw["final_url"]):
        refused = client.post("/v1/jobs", headers=other, json={"task": "restyle", "image": ref})
        assert refused.status_code == 400, (ref, refused.text)
        assert "not a known upload" in refused.json()["error"]["message"]
        luw_refused = client.post("/v2/generate", headers=other,
                                  json={"model": "interior", "image": ref, "styles": "Modern"})
        assert luw_refused.status_code == 400 and luw_refused.json()["status"] is False
    # Its own key still uses it by id and by either URL.
    for ref in (upload["id"], upload["url"], luw["final_url"]):
        taken = client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": ref})
        assert taken.status_code == 202, (ref, taken.text)
    served = client.get(upload["url"])
    assert served.status_code == 200 and served.headers["x-content-type-options"] == "nosniff"
