"""The Luw.ai-compatible dialect (/v2), against the real app: every endpoint, model, field, error."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from roomrender.api.errors import HttpError
from roomrender.api.luw.errors import luw_error
from roomrender.api.luw.presenters import UNLIMITED_CREDITS, result_body
from roomrender.app import create_app
from roomrender.canonical.camera import CAMERA_MOVES
from roomrender.db.tables import files, jobs
from roomrender.services import Services, build_services
from roomrender.url_signing import server_secret, sign
from tests.conftest import BASE_URL, data_uri, drain, make_room_photo
from tests.fakes import FAIL_PROMPT, AllTasksEngine

PROCESSING_KEYS = {"status", "progress", "processing", "processing_url"}
AUTH_ERROR = {"status": False, "errors": {"auth": ["Wrong credentials or expired token"]}}


@pytest.fixture
def fake_services(settings) -> Iterator[Services]:
    built = build_services(settings, engine=AllTasksEngine())
    yield built
    built.db.dispose()


@pytest.fixture
def fake_client(fake_services: Services) -> Iterator[TestClient]:
    app = create_app(fake_services.settings, services=fake_services, workers=0, janitor=False)
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def fake_auth(fake_services: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {fake_services.keys.create('luw')[1]}"}


@pytest.fixture
def room(room_jpeg: bytes) -> str:
    return data_uri(room_jpeg)


def job_count(services: Services) -> int:
    with services.db.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(jobs)).scalar_one())


def poll(client: TestClient, auth: dict[str, str], processing_url: str) -> dict:
    response = client.post("/v2/results", headers=auth, data={"processing_url": processing_url})
    assert response.status_code == 200, response.text
    return response.json()


def generate_and_run(client, auth, services, **fields) -> dict:
    started = client.post("/v2/generate", headers=auth, data=fields)
    assert started.status_code == 200, started.text
    drain(services)
    return poll(client, auth, started.json()["processing_url"])


# -- authentication and credits errors -----------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("POST", "/v2/generate"), ("POST", "/v2/results"), ("GET", "/v2/results"),
    ("POST", "/v2/upload"), ("GET", "/v2/credits"), ("GET", "/v2/materials"),
])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer rr_not-a-key"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"}])
def test_bad_credentials_answer_luws_auth_error(client, method, path, headers):
    response = client.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.json() == AUTH_ERROR


def test_a_revoked_key_is_refused(client, services, api_key, auth):
    services.keys.revoke(services.keys.authenticate(api_key).id)
    time.sleep(2.1)  # the auth cache
    assert client.get("/v2/credits", headers=auth).json() == AUTH_ERROR


def test_no_credits_answers_insert_coin(client, services, room):
    _, plaintext = services.keys.create("poor", credits=0)
    response = client.post("/v2/generate", headers={"Authorization": f"Bearer {plaintext}"},
                           data={"model": "interior", "image": room, "styles": "Modern"})
    assert response.status_code == 402
    assert response.json() == {"status": False, "insert_coin": True}
    assert job_count(services) == 0


# -- generate: the answers --------------------------------------------------------------------

def test_generate_with_form_fields_answers_processing_then_output(client, auth, services, room):
    started = client.post("/v2/generate", headers=auth, data={
        "model": "interior", "image": room, "prompt": "a calm living room",
        "styles": "Modern", "knows": "Living Room"})
    assert started.status_code == 200, started.text
    body = started.json()
    assert set(body) == PROCESSING_KEYS
    assert body["status"] is True and body["processing"] is True
    assert set(body["progress"]) == {"started_at", "state", "percent"}
    assert body["progress"]["state"] == "processing" and body["progress"]["percent"] == 0
    assert body["progress"]["started_at"].endswith("Z") and "T" in body["progress"]["started_at"]
    job = services.jobs.get(services.keys.authenticate(auth["Authorization"][7:]),
                            body["processing_url"])
    assert (job.task.value, job.request.style, job.request.room_type, job.dialect) == (
        "restyle", "modern", "living_room", "luw")

    drain(services)
    done = poll(client, auth, body["processing_url"])
    assert set(done) == {"status", "output"} and done["status"] is True
    assert isinstance(done["output"], str)
    image = client.get(done["output"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (320, 240)


def test_generate_accepts_json_like_the_official_client(client, auth, services, room):
    started = client.post("/v2/generate", headers=auth, json={
        "model": "interior", "image": room, "styles": "Scandinavian", "seed": 42, "precise": 75,
        "fill_room": False})
    assert started.status_code == 200, started.text
    drain(services)
    done = client.post("/v2/results", headers=auth,
                       json={"processing_url": started.json()["processing_url"]}).json()
    assert done["status"] is True and done["output"].startswith(BASE_URL + "/files/")


@pytest.mark.parametrize("luw_format,content_type", [
    ("jpg", "image/jpeg"), ("png", "image/png"), ("webp", "image/webp")])
def test_format_is_honoured_in_the_output_file(client, auth, services, room, luw_format, content_type):
    done = generate_and_run(client, auth, services, model="interior", image=room,
                            styles="Modern", format=luw_format)
    image = client.get(done["output"])
    assert image.headers["content-type"] == content_type
    assert Image.open(io.BytesIO(image.content)).format == {"jpg": "JPEG", "png": "PNG",
                                                             "webp": "WEBP"}[luw_format]


def test_an_unknown_format_is_refused(client, auth, room):
    response = client.post("/v2/generate", headers=auth,
                           data={"model": "interior", "image": room, "format": "gif"})
    assert response.status_code == 400
    assert response.json() == {"status": False, "error": "format must be jpg, png or webp, not 'gif'"}


# -- generate: fields --------------------------------------------------------------------------

def submitted_request(services: Services, auth: dict[str, str], processing_url: str):
    owner = services.keys.authenticate(auth["Authorization"][7:])
    return services.jobs.get(owner, processing_url).request


@pytest.mark.parametrize("precise,strength", [(90, 0.1), (75, 0.25), (40, 0.6), (100, 0.0), (1, 0.99)])
def test_precise_maps_to_strength(client, auth, services, room, precise, strength):
    started = client.post("/v2/generate", headers=auth,
                          data={"model": "interior", "image": room, "precise": str(precise)})
    assert started.status_code == 200, started.text
    request = submitted_request(services, auth, started.json()["processing_url"])
    assert request.strength == pytest.approx(strength)


@pytest.mark.parametrize("precise", ["0", "101", "abc", "7.5"])
def test_precise_out_of_range_is_a_400(client, auth, room, precise):
    response = client.post("/v2/generate", headers=auth,
                           data={"model": "interior", "image": room, "precise": precise})
    assert response.status_code == 400
    assert response.json()["status"] is False and "precise" in response.json()["error"]


def test_seed_and_several_styles_and_knows(client, auth, services, room):
    started = client.post("/v2/generate", headers=auth, data={
        "model": "interior", "image": room, "seed": "1234", "prompt": "cosy",
        "styles": "Japandi, Scandinavian", "knows": "bedroom,Home Office"})
    assert started.status_code == 200, started.text
    request = submitted_request(services, auth, started.json()["processing_url"])
    assert request.seed == 1234
    assert request.style == "japandi" and request.room_type == "bedroom"
    assert request.prompt.startswith("cosy") and "Scandinavian" in request.prompt
    assert "Home Office" in request.prompt


def test_style_names_are_case_sensitive(client, auth, room):
    response = client.post("/v2/generate", headers=auth,
                           data={"model": "interior", "image": room, "styles": "modern"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "unknown style 'modern'" in error and "Modern" in error and "Scandinavian" in error


def test_unknown_knows_lists_the_accepted_values(client, auth, room):
    response = client.post("/v2/generate", headers=auth,
                           data={"model": "interior", "image": room, "knows": "Spaceship"})
    assert response.status_code == 400
    assert "Living Room" in response.json()["error"] and "House" in response.json()["error"]


def test_bad_seed_is_a_400(client, auth, room):
    response = client.post("/v2/generate", headers=auth,
                           data={"model": "interior", "image": room, "seed": "-3"})
    assert response.status_code == 400 and response.json()["status"] is False


def test_webhook_is_kept_exactly_with_its_query_string(client, auth, services, room):
    # This machine resolves no public name; a local receiver address stands in for one.
    services.jobs.settings = services.settings.model_copy(update={"allow_private_urls": True})
    hook = "http://127.0.0.1:9/luw/callback?order=77&user=a%20b&sig=x=="
    started = client.post("/v2/generate", headers=auth,
                          data={"model": "interior", "image": room, "webhook": hook})
    request = submitted_request(services, auth, started.json()["processing_url"])
    assert request.webhook == hook
    assert request.webhook_events == ["job.succeeded", "job.failed"]


def test_enhance_prompt_and_luwmodel_are_accepted(client, auth, room):
    response = client.post("/v2/generate", headers=auth, data={
        "model": "interior", "image": room, "enhance_prompt": "true", "luwmodel": "symphony-3"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("fields,message", [
    ({}, "model is required"),
    ({"model": "teleport"}, "unknown model 'teleport'"),
    ({"model": "interior"}, "needs an input image"),
    ({"model": "segmentprompt"}, "segmentprompt needs a prompt"),
    ({"model": "enhance", "hd": "3"}, "hd must be 2, 4 or 8"),
    ({"model": "interior", "fill_room": "maybe"}, "fill_room must be true or false"),
    ({"model": "interior", "image": "ftp://example.com/room.jpg"}, "must be an http(s) URL"),
])
def test_bad_input_is_a_400_in_luws_shape(client, auth, fields, message):
    response = client.post("/v2/generate", headers=auth, data=fields)
    assert response.status_code == 400
    assert response.json()["status"] is False and message in response.json()["error"]


def test_a_broken_json_body_is_a_400(client, auth):
    response = client.post("/v2/generate", headers={**auth, "Content-Type": "application/json"},
                           content=b'{"model": ')
    assert response.status_code == 400 and response.json()["status"] is False


def test_models_the_preview_engine_cannot_run_say_so(client, auth, room):
    response = client.post("/v2/generate", headers=auth, data={"model": "removefurniture", "image": room})
    assert response.status_code == 400
    assert response.json()["status"] is False and "diffusers" in response.json()["error"]


# -- every model, mapped (a fake engine that runs every task) ---------------------------------

def white_mask() -> str:
    buffer = io.BytesIO()
    Image.new("L", (320, 240), 255).save(buffer, format="PNG")
    return data_uri(buffer.getvalue(), "image/png")


@pytest.mark.parametrize("fields,expected", [
    ({"model": "interior", "styles": "Modern"}, {"task": "restyle", "style": "modern"}),
    ({"model": "interior", "fill_room": "true", "knows": "Bedroom"},
     {"task": "stage", "fill_room": True, "room_type": "bedroom"}),
    ({"model": "exterior", "styles": "Mediterranean", "knows": "House"},
     {"task": "restyle", "exterior": True, "room_type": "house_exterior"}),
    ({"model": "sketch", "prompt": "a loft"}, {"task": "sketch_render"}),
    ({"model": "render"}, {"task": "sketch_render"}),
    ({"model": "removefurniture"}, {"task": "empty_room"}),
    ({"model": "magicwand", "mask_image": "MASK", "remove": "true"},
     {"task": "edit", "remove": True, "keep_structure": False}),
    ({"model": "magicwand", "mask_image": "MASK", "prompt": "a plant", "controlnet": "true"},
     {"task": "edit", "remove": False, "keep_structure": True}),
    ({"model": "enhance", "hd": "4"}, {"task": "upscale", "scale": 4}),
    ({"model": "enhance"}, {"task": "upscale", "scale": 2}),
    ({"model": "expand"}, {"task": "expand"}),
    ({"model": "segment"}, {"task": "segment", "prompt": None}),
    ({"model": "segmentprompt", "prompt": "walls"}, {"task": "segment", "prompt": "walls"}),
])
def test_each_model_maps_to_its_task_and_succeeds(fake_client, fake_auth, fake_services, room,
                                                  fields, expected):
    fields = {**fields, "image": room}
    if fields.get("mask_image") == "MASK":
        fields["mask_image"] = white_mask()
    done = generate_and_run(fake_client, fake_auth, fake_services, **fields)
    assert done["status"] is True, done
    request = fake_services.engine.seen[-1]
    for name, value in expected.items():
        got = getattr(request, name)
        assert (got.value if hasattr(got, "value") else got) == value, name
    if fields["model"] == "magicwand":
        assert request.mask is not None


def test_style_transfer_and_material_and_extra_images_are_fetched_like_image(
        fake_client, fake_auth, fake_services, room):
    other = data_uri(make_room_photo(200, 150))
    done = generate_and_run(fake_client, fake_auth, fake_services, model="interior", image=room,
                            style_transfer=other, extra_image_1=other, extra_image_3=other)
    assert done["status"] is True
    request = fake_services.engine.seen[-1]
    assert request.task.value == "style_transfer"
    # Resolved to stored inputs (upload ids), like `image`.
    assert request.reference_image.startswith("in-") and len(request.extra_images) == 2
    assert all(ref.startswith("in-") for ref in request.extra_images)

    done = generate_and_run(fake_client, fake_auth, fake_services, model="magicwand", image=room,
                            mask_image=white_mask(), material_image=other)
    assert done["status"] is True
    assert fake_services.engine.seen[-1].reference_image.startswith("in-")


def test_segmentation_output_is_a_list_of_label_and_base64_png_mask(fake_client, fake_auth,
                                                                   fake_services, room):
    done = generate_and_run(fake_client, fake_auth, fake_services, model="segment", image=room)
    assert done["status"] is True and [item["label"] for item in done["output"]] == [
        "wall", "floor", "ceiling"]
    for item in done["output"]:
        assert set(item) == {"label", "mask", "score"} and item["score"] is None
        mask = Image.open(io.BytesIO(base64.b64decode(item["mask"])))
        assert mask.format == "PNG" and mask.size == (320, 240)
    assert Image.open(io.BytesIO(base64.b64decode(done["output"][0]["mask"]))).getpixel((5, 5)) == 255


def test_several_images_answer_a_list(fake_client, fake_auth, fake_services, room):
    done = generate_and_run(fake_client, fake_auth, fake_services, model="interior", image=room,
                            num_images="3")
    assert isinstance(done["output"], list) and len(done["output"]) == 3
    assert all(fake_client.get(url).status_code == 200 for url in done["output"])


def test_a_failed_generation_answers_status_false_not_processing(fake_client, fake_auth,
                                                                fake_services, room):
    done = generate_and_run(fake_client, fake_auth, fake_services, model="interior", image=room,
                            prompt=FAIL_PROMPT)
    assert done["status"] is False
    assert "fake engine was asked to fail" in done["error"]
    assert done["response"] == "generation_failed"
    assert done["progress"]["state"] == "failed"
    assert "processing" not in done and "output" not in done


def test_a_canceled_job_answers_status_false(client, auth, services, room):
    started = client.post("/v2/generate", headers=auth, data={"model": "interior", "image": room})
    processing_url = started.json()["processing_url"]
    client.post(f"/v1/jobs/{processing_url}/cancel", headers=auth)
    done = poll(client, auth, processing_url)
    assert done["status"] is False and done["progress"]["state"] == "canceled"


def test_expired_results_answer_status_false(client, auth, services, room):
    done = generate_and_run(client, auth, services, model="interior", image=room)
    assert done["status"] is True
    with services.db.begin() as connection:
        connection.execute(jobs.update().values(expires_at=time.time() - 1))
    done = poll(client, auth, client.get("/v1/jobs", headers=auth).json()["data"][0]["id"])
    assert done["status"] is False and "expired" in done["error"]


def test_progress_while_running(client, auth, services, room):
    started = client.post("/v2/generate", headers=auth, data={"model": "interior", "image": room})
    processing_url = started.json()["processing_url"]
    claim = services.queue.claim("test-worker", services.engine.name)
    services.queue.set_progress(claim.token, {processing_url: 0.45})
    body = poll(client, auth, processing_url)
    assert set(body) == PROCESSING_KEYS
    assert body["progress"]["percent"] == 45 and body["progress"]["state"] == "processing"


def test_result_body_is_what_results_answers(client, auth, services, room):
    started = client.post("/v2/generate", headers=auth, data={"model": "interior", "image": room})
    processing_url = started.json()["processing_url"]
    owner = services.keys.authenticate(auth["Authorization"][7:])
    assert result_body(services.jobs.get(owner, processing_url), services.storage) == poll(
        client, auth, processing_url)
    drain(services)
    assert result_body(services.jobs.get(owner, processing_url), services.storage) == poll(
        client, auth, processing_url)


# -- results: every way of asking ------------------------------------------------------------

@pytest.fixture
def finished(client, auth, services, room) -> str:
    started = client.post("/v2/generate", headers=auth, data={"model": "interior", "image": room})
    drain(services)
    return started.json()["processing_url"]


def test_results_by_post_form_json_and_query(client, auth, finished):
    answers = [
        client.post("/v2/results", headers=auth, data={"processing_url": finished}),
        client.post("/v2/results", headers=auth, json={"processing_url": finished}),
        client.post(f"/v2/results?processing_url={finished}", headers=auth),
        client.get(f"/v2/results?processing_url={finished}", headers=auth),
    ]
    assert all(answer.status_code == 200 for answer in answers)
    assert all(answer.json() == answers[0].json() for answer in answers)
    assert answers[0].json()["status"] is True and "output" in answers[0].json()


def test_results_get_with_a_form_body_like_luws_curl_example(client, auth, finished):
    # curl -X GET .../v2/results -H "Authorization: Bearer ..." -d "processing_url=abc123"
    response = client.request("GET", "/v2/results", headers={
        **auth, "Content-Type": "application/x-www-form-urlencoded"},
        content=f"processing_url={finished}".encode())
    assert response.status_code == 200, response.text
    assert response.json()["status"] is True and "output" in response.json()


def test_generate_with_processing_url_answers_that_jobs_status(client, auth, services, finished):
    before = job_count(services)
    by_query = client.post(f"/v2/generate?processing_url={finished}", headers=auth,
                           data={"model": "interior"})
    by_field = client.post("/v2/generate", headers=auth, data={"processing_url": finished})
    by_get = client.get(f"/v2/generate?processing_url={finished}", headers=auth)
    expected = poll(client, auth, finished)
    assert by_query.json() == by_field.json() == by_get.json() == expected
    assert job_count(services) == before


def test_unknown_or_foreign_processing_url_is_a_404(client, auth, services, finished):
    unknown = client.post("/v2/results", headers=auth, data={"processing_url": "abc123"})
    assert unknown.status_code == 404
    assert unknown.json() == {"status": False, "error": "no generation with processing_url 'abc123'"}
    other = {"Authorization": f"Bearer {services.keys.create('other')[1]}"}
    foreign = client.post("/v2/results", headers=other, data={"processing_url": finished})
    assert foreign.status_code == 404 and foreign.json()["status"] is False


def test_results_without_processing_url_is_a_400(client, auth):
    response = client.post("/v2/results", headers=auth)
    assert response.status_code == 400 and "processing_url is required" in response.json()["error"]


def test_an_unknown_route_under_v2_answers_in_luws_shape(client, auth):
    response = client.get("/v2/nothing-here", headers=auth)
    assert response.status_code == 404 and response.json()["status"] is False


# -- idempotency -----------------------------------------------------------------------------

def test_idempotency_key_returns_the_original_job_and_charges_once(client, services, room):
    _, plaintext = services.keys.create("counted", credits=5)
    headers = {"Authorization": f"Bearer {plaintext}", "Idempotency-Key": "order-77"}
    fields = {"model": "interior", "image": room, "styles": "Modern"}
    first = client.post("/v2/generate", headers=headers, data=fields)
    again = client.post("/v2/generate", headers=headers, data=fields)
    assert first.status_code == again.status_code == 200
    assert first.json()["processing_url"] == again.json()["processing_url"]
    assert job_count(services) == 1
    credits = client.get("/v2/credits", headers=headers).json()["credits"]
    assert credits == {"available": 4, "used": 1, "purchased": 5}
    drain(services)
    replay = client.post("/v2/generate", headers=headers, data=fields).json()
    assert replay["status"] is True and "output" in replay

    reused = client.post("/v2/generate", headers=headers, data={**fields, "styles": "Japandi"})
    assert reused.status_code == 400 and "Idempotency-Key" in reused.json()["error"]


# -- uploads ---------------------------------------------------------------------------------

def test_upload_then_put_then_final_url_works_as_image(client, auth, services, room_jpeg):
    answer = client.post("/v2/upload", headers=auth, files={"filename": (None, "room.jpg")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"status", "signed_url", "final_url"} and body["status"] is True
    assert body["final_url"].startswith(BASE_URL + "/files/") and body["final_url"].endswith("-room.jpg")
    assert client.get(body["final_url"]).status_code == 404  # nothing there yet

    put = client.put(body["signed_url"], content=room_jpeg, headers={"Content-Type": "image/jpeg"})
    assert put.status_code == 200, put.text
    stored = client.get(body["final_url"])
    assert stored.status_code == 200 and stored.content == room_jpeg

    done = generate_and_run(client, auth, services, model="interior", image=body["final_url"])
    assert done["status"] is True


def test_upload_accepts_form_json_and_a_file_part(client, auth):
    by_form = client.post("/v2/upload", headers=auth, data={"filename": "a.png"})
    by_json = client.post("/v2/upload", headers=auth, json={"filename": "b.webp"})
    by_file = client.post("/v2/upload", headers=auth, files={"filename": ("c.jpg", b"...", "image/jpeg")})
    for response, name in ((by_form, "a.png"), (by_json, "b.webp"), (by_file, "c.jpg")):
        assert response.status_code == 200, response.text
        assert response.json()["final_url"].endswith("-" + name)


def test_finalize_upload_confirms_an_upload_whose_bytes_arrived(client, auth, services, room_jpeg):
    body = client.post("/v2/upload", headers=auth, data={"filename": "room.jpg", "pid": "42"}).json()
    early = client.get("/v2/finalize_upload", headers=auth, params={"url": body["final_url"]})
    assert early.status_code == 400
    assert early.json() == {"status": False, "error": "the file's bytes have not arrived: PUT them "
                                                      "to the signed_url first"}

    assert client.put(body["signed_url"], content=room_jpeg).status_code == 200
    for _ in range(3):  # the official client retries it: every answer is the same
        done = client.get("/v2/finalize_upload", headers=auth, params={"url": body["final_url"]})
        assert done.status_code == 200 and done.json() == {"status": True}
    assert client.get(body["final_url"]).content == room_jpeg
    assert generate_and_run(client, auth, services, model="interior", image=body["final_url"])["status"]


def test_finalize_upload_of_another_keys_or_an_unknown_url_is_a_404(client, auth, services, room_jpeg):
    body = client.post("/v2/upload", headers=auth, data={"filename": "room.jpg"}).json()
    assert client.put(body["signed_url"], content=room_jpeg).status_code == 200
    other = {"Authorization": f"Bearer {services.keys.create('other')[1]}"}
    key = body["final_url"].rsplit("/", 1)[1]
    for headers, url in (
            (other, body["final_url"]),  # another key's upload
            (auth, body["final_url"].replace(key, "0" * 32 + "-room.jpg")),  # never issued
            (auth, body["final_url"].replace(key[:32], key[:16] + "f" * 16)),  # a forged MAC
            (auth, "https://elsewhere.example/files/" + key)):  # not this server's URL
        response = client.get("/v2/finalize_upload", headers=headers, params={"url": url})
        assert response.status_code == 404, url
        assert response.json()["status"] is False and "no upload of this key" in response.json()["error"]
    missing = client.get("/v2/finalize_upload", headers=auth)
    assert missing.status_code == 400 and "url is required" in missing.json()["error"]
    assert client.get("/v2/finalize_upload", params={"url": body["final_url"]}).json() == AUTH_ERROR


def test_finalize_upload_of_an_expired_upload_is_a_404(client, auth, services, room_jpeg):
    body = client.post("/v2/upload", headers=auth, data={"filename": "x12tmp-room.jpg"}).json()
    assert client.put(body["signed_url"], content=room_jpeg).status_code == 200
    key = body["final_url"].rsplit("/", 1)[1]
    with services.db.begin() as connection:
        connection.execute(files.update().where(files.c.key == key).values(expires_at=time.time() - 1))
    response = client.get("/v2/finalize_upload", headers=auth, params={"url": body["final_url"]})
    assert response.status_code == 404 and "expired" in response.json()["error"]


def test_video_styles_need_no_key_and_list_the_camera_moves_rendered_here(client):
    response = client.get("/v2/video_styles")
    assert response.status_code == 200
    styles = response.json()
    assert {"name": "Flythrough Cinematic", "prompt": CAMERA_MOVES["flythrough"].prompt} in styles
    # One per camera move the server renders, each with words for a video model.
    assert len(styles) == len(CAMERA_MOVES) and all(set(s) == {"name", "prompt"} and s["prompt"]
                                                    for s in styles)


def test_removebg_cuts_the_subject_out_on_a_transparent_png(client, auth, services):
    product = Image.new("RGB", (80, 60), (250, 250, 250))
    product.paste((30, 110, 60), (20, 15, 60, 45))
    buffer = io.BytesIO()
    product.save(buffer, format="PNG")
    done = generate_and_run(client, auth, services, model="removebg", format="jpg",
                            image=data_uri(buffer.getvalue(), "image/png"))
    assert done["status"] is True and isinstance(done["output"], str), done
    download = client.get(done["output"])
    assert download.headers["content-type"] == "image/png"  # a JPEG cannot be transparent
    cut = Image.open(io.BytesIO(download.content))
    assert cut.mode == "RGBA"
    assert cut.getpixel((2, 2))[3] == 0 and cut.getpixel((40, 30)) == (30, 110, 60, 255)


@pytest.mark.parametrize("fields,message", [
    ({}, "filename is required"),
    ({"filename": "walkthrough.mp4"}, "JPEG, PNG and WebP images only"),
])
def test_upload_bad_input(client, auth, fields, message):
    response = client.post("/v2/upload", headers=auth, data=fields)
    assert response.status_code == 400 and message in response.json()["error"]


def test_a_signed_url_works_once(client, auth, room_jpeg):
    signed = client.post("/v2/upload", headers=auth, data={"filename": "room.jpg"}).json()["signed_url"]
    assert client.put(signed, content=room_jpeg).status_code == 200
    again = client.put(signed, content=make_room_photo(100, 100))
    assert again.status_code == 410
    assert again.json() == {"status": False, "error": "the signed URL was already used"}


def test_a_tampered_signed_url_is_refused(client, auth, services, room_jpeg):
    signed = client.post("/v2/upload", headers=auth, data={"filename": "room.jpg"}).json()["signed_url"]
    parts = urlsplit(signed)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    other_owner = services.keys.create("other")[0].id
    for changed in ({"owner": other_owner}, {"ttl": "999999999"}, {"signature": "0" * 64},
                    {"expires": str(int(query["expires"]) + 60)}):
        url = parts.path + "?" + "&".join(f"{k}={v}" for k, v in {**query, **changed}.items())
        response = client.put(url, content=room_jpeg)
        assert response.status_code == 403, changed
        assert response.json()["status"] is False
    renamed = parts.path.replace("-room.jpg", "-evil.jpg") + "?" + parts.query
    assert client.put(renamed, content=room_jpeg).status_code == 403
    assert client.put(parts.path, content=room_jpeg).status_code == 403


def test_an_expired_signed_url_is_gone(client, auth, services, room_jpeg):
    owner = services.keys.authenticate(auth["Authorization"][7:])
    expires = int(time.time()) - 5
    key = "0123456789abcdef0123456789abcdef-room.jpg"
    ttl = services.settings.upload_ttl_seconds
    signature = sign(server_secret(services.settings), "luw-upload", key, owner.id, str(ttl),
                     expires=expires)
    response = client.put(f"/v2/upload/{key}?owner={owner.id}&ttl={ttl}&expires={expires}"
                          f"&signature={signature}", content=room_jpeg)
    assert response.status_code == 410 and "expired" in response.json()["error"]


def test_a_put_of_something_not_an_image_is_a_400(client, auth):
    signed = client.post("/v2/upload", headers=auth, data={"filename": "notes.jpg"}).json()["signed_url"]
    response = client.put(signed, content=b"hello, not an image")
    assert response.status_code == 400 and response.json()["status"] is False


def test_x12tmp_uploads_are_deleted_after_12_hours(client, auth, services, room_jpeg):
    body = client.post("/v2/upload", headers=auth, data={"filename": "x12tmp-room.jpg"}).json()
    kept = client.post("/v2/upload", headers=auth, data={"filename": "room.jpg"}).json()
    before = time.time()
    assert client.put(body["signed_url"], content=room_jpeg).status_code == 200
    assert client.put(kept["signed_url"], content=room_jpeg).status_code == 200
    key = body["final_url"].rsplit("/", 1)[1]
    with services.db.connect() as connection:
        expires_at = connection.execute(
            select(files.c.expires_at).where(files.c.key == key)).scalar_one()
    assert before + 12 * 3600 - 1 <= expires_at <= time.time() + 12 * 3600

    assert services.files.delete_expired(now=before + 11 * 3600) == 0
    assert services.files.delete_expired(now=time.time() + 12 * 3600 + 1) == 1
    assert client.get(body["final_url"]).status_code == 404
    assert client.get(kept["final_url"]).status_code == 200


def test_the_secret_key_is_generated_once_and_shared(settings):
    first = server_secret(settings)
    assert len(first) >= 32 and (settings.data_dir / "secret_key").read_bytes().strip() == first
    assert server_secret(settings.model_copy()) == first
    assert server_secret(settings.model_copy(update={"secret_key": "from-env"})) == b"from-env"


def test_the_secret_key_comes_from_the_environment(monkeypatch, tmp_path):
    from roomrender.config import Settings

    monkeypatch.setenv("ROOMRENDER_SECRET_KEY", "s3cret")
    assert server_secret(Settings(data_dir=tmp_path)) == b"s3cret"
    assert not (tmp_path / "secret_key").exists()


# -- credits, styles, materials -----------------------------------------------------------------

def test_credits_from_the_keys_real_balance(client, services, room):
    _, plaintext = services.keys.create("ten", credits=10)
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/v2/credits", headers=headers).json()["credits"] == {
        "available": 10, "used": 0, "purchased": 10}
    client.post("/v2/generate", headers=headers, data={"model": "interior", "image": room})
    body = client.get("/v2/credits", headers=headers).json()
    assert body["credits"] == {"available": 9, "used": 1, "purchased": 10}
    assert body["subscription"] == {"plan": "credits", "unlimited": False, "reserved": 1}


def test_credits_of_an_unlimited_key(client, auth):
    body = client.get("/v2/credits", headers=auth).json()
    assert body["credits"] == {"available": UNLIMITED_CREDITS, "used": 0,
                               "purchased": UNLIMITED_CREDITS}
    assert body["subscription"]["unlimited"] is True


def test_styles_need_no_key_and_their_thumbnails_resolve(client):
    response = client.get("/v2/styles?version=2")
    assert response.status_code == 200
    styles = response.json()
    assert {"Modern", "Scandinavian", "Industrial"} <= {style["name"] for style in styles}
    for style in styles:
        assert set(style) == {"name", "description", "thumb_image", "image"}
    thumb = client.get(styles[0]["thumb_image"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (160, 160)
    assert Image.open(io.BytesIO(client.get(styles[0]["image"]).content)).size == (512, 512)


def test_every_listed_style_is_accepted_by_generate(client, auth, room):
    for style in client.get("/v2/styles?version=2").json():
        response = client.post("/v2/generate", headers=auth,
                               data={"model": "interior", "image": room, "styles": style["name"]})
        assert response.status_code == 200, (style["name"], response.text)


def test_materials_and_their_images_resolve(client, auth):
    response = client.get("/v2/materials", headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] is True and body["materials"]
    for material in body["materials"]:
        assert set(material) == {"id", "prompt_type", "title", "extra", "image", "thumb"}
    thumb = client.get(body["materials"][0]["thumb"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert client.get(body["materials"][0]["image"]).status_code == 200


def test_an_unknown_swatch_is_a_404(client):
    response = client.get("/v2/swatches/styles/nope.png")
    assert response.status_code == 404 and response.json()["status"] is False


# -- error shapes not reachable by input ------------------------------------------------------

@pytest.mark.parametrize("status,expected", [(429, 429), (413, 400), (409, 400), (503, 500)])
def test_error_statuses_on_the_wire(status, expected):
    error = HttpError("busy", status=status)
    response = luw_error(error)
    assert response.status_code == expected
    if expected == 500:
        assert response.body == b'{"status":false,"error":"Something went wrong on the server","response":"busy"}'
    else:
        assert response.body == b'{"status":false,"error":"busy"}'


def test_another_process_on_the_host_signs_with_the_same_secret(settings):
    import subprocess
    import sys

    mine = server_secret(settings)
    theirs = subprocess.run(
        [sys.executable, "-c", "import sys; from roomrender.config import Settings; "
         "from roomrender.url_signing import server_secret; "
         "sys.stdout.write(server_secret(Settings(data_dir=sys.argv[1])).decode())",
         str(settings.data_dir)],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    assert theirs.encode() == mine


def test_a_get_of_generate_without_processing_url_starts_nothing(client, auth, services):
    response = client.get("/v2/generate?model=interior", headers=auth)
    assert response.status_code == 400 and "POST" in response.json()["error"]
    assert job_count(services) == 0


def test_generate_takes_an_image_file_in_a_multipart_body(client, auth, services, room_jpeg):
    started = client.post("/v2/generate", headers=auth, data={"model": "interior"},
                          files={"image": ("room.jpg", room_jpeg, "image/jpeg")})
    assert started.status_code == 200, started.text
    drain(services)
    assert poll(client, auth, started.json()["processing_url"])["status"] is True


def test_a_failed_store_leaves_the_signed_url_usable(client, auth, services, room_jpeg, monkeypatch):
    signed = client.post("/v2/upload", headers=auth, data={"filename": "room.jpg"}).json()["signed_url"]
    real_put = services.storage.put

    def broken_put(key, data, content_type):
        raise OSError("disk full")

    monkeypatch.setattr(services.storage, "put", broken_put)
    quiet = TestClient(client.app, base_url=BASE_URL, raise_server_exceptions=False)
    failed = quiet.put(signed, content=room_jpeg)
    assert failed.status_code == 500 and failed.json()["status"] is False
    monkeypatch.setattr(services.storage, "put", real_put)
    assert client.put(signed, content=room_jpeg).status_code == 200
