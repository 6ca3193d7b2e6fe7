from tests.conftest import data_uri, drain


def test_restyle_job_runs_end_to_end(client, auth, services, room_jpeg):
    created = client.post("/v1/jobs", headers=auth, json={
        "task": "restyle", "image": data_uri(room_jpeg), "style": "modern", "room_type": "living_room"})
    assert created.status_code == 202, created.text
    assert drain(services) == 1
    job = client.get(f"/v1/jobs/{created.json()['id']}", headers=auth).json()
    assert job["status"] == "succeeded"
    image = client.get(job["outputs"][0]["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
