"""The Spacely-compatible dialect (/api/v1) against the real app: every endpoint, field and error."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from roomrender.api.spacely.resources import resources
from roomrender.api.spacely.routes import result_body
from roomrender.app import create_app
from roomrender.catalog import room_types, styles
from roomrender.config import Settings
from roomrender.services import Services, build_services
from tests.conftest import BASE_URL, drain, make_room_photo
from tests.fakes import VARIANT_COLORS, AllTasksEngine
from tests.servers import serve_files

ROOM = make_room_photo(320, 240)
STYLE_REF = make_room_photo(200, 150, fmt="PNG")
PRODUCT_RED = (190, 40, 35)


def product_png() -> bytes:
    """A red block on a white studio background, 80x60 of it visible."""
    product = Image.new("RGB", (120, 90), (250, 250, 248))
    product.paste(PRODUCT_RED, (20, 15, 100, 75))
    buffer = io.BytesIO()
    product.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos() -> Iterator[SimpleNamespace]:
    """A local HTTP server with a room photo, a style reference and a text file."""
    files = {
        "/room.jpg": (ROOM, "image/jpeg"),
        "/style.png": (STYLE_REF, "image/png"),
        "/notes.txt": (b"this is not an image", "text/plain"),
        "/product.png": (product_png(), "image/png"),
    }
    with serve_files(files) as base:
        yield SimpleNamespace(room=f"{base}/room.jpg", style=f"{base}/style.png",
                              product=f"{base}/product.png",
                              text=f"{base}/notes.txt", missing=f"{base}/gone.jpg")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The photo server is on 127.0.0.1, which the default rules refuse (tested below).
    return settings.model_copy(update={"allow_private_urls": True})


@pytest.fixture
def key(api_key: str) -> dict[str, str]:
    return {"X-API-KEY": api_key}


@pytest.fixture
def fake(settings: Settings) -> Iterator[SimpleNamespace]:
    """An app whose engine runs every task, to follow each endpoint through to success."""
    engine = AllTasksEngine()
    services = build_services(settings, engine=engine)
    app = create_app(settings, services=services, workers=0, janitor=False)
    with TestClient(app, base_url=BASE_URL) as client:
        yield SimpleNamespace(client=client, services=services, engine=engine)
    services.db.dispose()


def standard_body(photos: SimpleNamespace, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {"model": "spacely-v1", "imageUrl": photos.room,
                               "spaceType": "living_room", "spaceStyle": "modern",
                               "renovateType": "residential"}
    body.update(changes)
    return body


def poll(client: TestClient, key: dict[str, str], ref_id: str) -> dict[str, object]:
    response = client.get("/api/v1/generate/poll-result", params={"refId": ref_id}, headers=key)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def job_of(services: Services, api_key: str, ref_id: str):  # type: ignore[no-untyped-def]
    owner = services.keys.authenticate(api_key)
    assert owner is not None
    return services.jobs.get(owner, ref_id)


def submit(client: TestClient, key: dict[str, str], path: str, body: dict[str, object]) -> str:
    response = client.post(f"/api/v1/generate/{path}", headers=key, json=body)
    assert response.status_code == 200, response.text
    ref_id = response.json()["data"]
    assert str(uuid.UUID(ref_id)) == ref_id
    return ref_id


def assert_error(response, status: int, code: str, *words: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and error["code"] == code, error
    for word in words:
        assert word in error["message"], error["message"]
    return error


# -- the whole flow, on the default (preview) engine ---------------------------------------

def test_standard_renders_four_variants_through_poll_and_download(client, key, services, photos, api_key):
    ref_id = submit(client, key, "standard", standard_body(photos))

    assert poll(client, key, ref_id) == {"refId": ref_id, "status": "processing", "result": [],
                                          "progress": 0}
    drain(services)
    data = poll(client, key, ref_id)
    assert data["status"] == "success" and data["progress"] == 100
    assert len(data["result"]) == 4

    images = []
    for url in data["result"]:
        download = client.get(url)
        assert download.status_code == 200 and download.headers["content-type"] == "image/png"
        images.append(Image.open(io.BytesIO(download.content)).convert("RGB"))
    assert all(image.size == (320, 240) for image in images)
    assert len({image.tobytes() for image in images}) == 4  # four different variants

    job = job_of(services, api_key, ref_id)
    assert job.dialect == "spacely" and job.task.value == "restyle"
    assert (job.request.style, job.request.room_type, job.request.n) == ("modern", "living_room", 4)


def test_standard_variants_follow_the_setting(settings, photos, api_key, key):
    configured = settings.model_copy(update={"spacely_standard_variants": 2})
    services = build_services(configured)
    with TestClient(create_app(configured, services=services, janitor=False),
                    base_url=BASE_URL) as client:
        ref_id = submit(client, key, "standard", standard_body(photos))
        drain(services)
        assert len(poll(client, key, ref_id)["result"]) == 2
    services.db.dispose()


def test_color_transfer_paints_the_walls_on_the_preview_engine(client, key, services, photos, api_key):
    ref_id = submit(client, key, "color-transfer",
                    {"imageUrl": photos.room, "area": "wall", "color": "#2E7D32"})
    drain(services)
    data = poll(client, key, ref_id)
    assert data["status"] == "success" and len(data["result"]) == 1
    out = Image.open(io.BytesIO(client.get(data["result"][0]).content)).convert("RGB")
    red, green, blue = out.getpixel((300, 100))  # a wall pixel, right of the window
    assert green > red and green > blue
    job = job_of(services, api_key, ref_id)
    assert (job.task.value, job.request.area, job.request.color, job.request.exact_color) == (
        "recolor", "wall", "#2E7D32", False)


@pytest.mark.parametrize("path", ["empty-room", "style-transfer", "text-to-image"])
def test_tasks_the_preview_engine_cannot_run_are_refused_at_submit(client, key, photos, path):
    body = {"imageUrl": photos.room, "spaceType": "bedroom", "styleImageUrl": photos.style,
            "renovateType": "residential", "prompt": "a bright bedroom"}
    response = client.post(f"/api/v1/generate/{path}", headers=key, json=body)
    assert_error(response, 400, "needs_diffusers_engine", "preview engine")


def test_standard_models_needing_a_generative_engine_are_refused_on_preview(client, key, photos):
    response = client.post("/api/v1/generate/standard", headers=key,
                           json=standard_body(photos, model="spacely-unfurnished-space"))
    assert_error(response, 400, "needs_diffusers_engine", "stage")


def placement_body(photos: SimpleNamespace, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {"imageUrl": photos.room, "productImageUrl": photos.product,
                               "placement": {"x": 100, "y": 120, "w": 80, "h": 60},
                               "area": {"x": 80, "y": 100, "w": 130, "h": 110}}
    body.update(changes)
    return body


def test_furniture_placement_places_the_product_on_the_preview_engine(client, key, services, photos, api_key):
    ref_id = submit(client, key, "furniture-placement", placement_body(
        photos, placement={"x": 100.4, "y": 119.6, "w": 80, "h": 60}))
    drain(services)
    data = poll(client, key, ref_id)
    assert data["status"] == "success" and len(data["result"]) == 1
    placed = np.asarray(Image.open(io.BytesIO(client.get(data["result"][0]).content)).convert("RGB"), np.int32)
    room = np.asarray(Image.open(io.BytesIO(ROOM)).convert("RGB"), np.int32)
    assert np.abs(placed[125:160, 105:175] - PRODUCT_RED).max() <= 30
    assert np.array_equal(placed[:100], room[:100]) and np.array_equal(placed[:, 210:], room[:, 210:])
    job = job_of(services, api_key, ref_id)
    assert job.task.value == "place" and job.cost == 1
    assert job.request.placement.model_dump() == {"x": 100, "y": 120, "w": 80, "h": 60}
    assert job.request.area_box.model_dump() == {"x": 80, "y": 100, "w": 130, "h": 110}


@pytest.mark.parametrize("changes,code,words", [
    ({"placement": {"x": 300, "y": 120, "w": 80, "h": 60}}, "invalid_box",
     ["placement", "outside the photo", "320x240"]),
    ({"area": {"x": 0, "y": 0, "w": 330, "h": 240}}, "invalid_box", ["area", "outside the photo"]),
    ({"placement": {"x": 100, "y": 120, "w": 3, "h": 3}}, "invalid_box", ["too small"]),
    ({"area": {"x": 150, "y": 150, "w": 20, "h": 20}}, "invalid_box", ["must lie inside area"]),
    ({"placement": {"x": 10, "y": 20, "w": 0, "h": 80}}, "invalid_request", ["placement.w"]),
    ({"placement": {"x": -1, "y": 20, "w": 10, "h": 80}}, "invalid_request", ["placement.x"]),
    ({"area": {"x": 0, "y": 0, "w": 100}}, "invalid_request", ["area.h", "Field required"]),
    ({"placement": None}, "invalid_request", ["placement"]),
    ({"productImageUrl": "text"}, "invalid_image", ["product image"]),
    ({"productImageUrl": "missing"}, "fetch_failed", ["gone.jpg", "HTTP 404"]),
])
def test_furniture_placement_refuses_bad_boxes_and_products_with_a_400(client, key, photos, services,
                                                                       changes, code, words):
    body = placement_body(photos)
    for name, value in changes.items():
        if value is None:
            del body[name]
        elif isinstance(value, str) and hasattr(photos, value):
            body[name] = getattr(photos, value)
        else:
            body[name] = value
    response = client.post("/api/v1/generate/furniture-placement", headers=key, json=body)
    assert_error(response, 400, code, *words)
    assert drain(services) == 0


# -- field mapping, followed to success on an engine that runs every task -------------------

def run(fake: SimpleNamespace, key: dict[str, str], api_key: str, path: str,
        body: dict[str, object]):  # type: ignore[no-untyped-def]
    ref_id = submit(fake.client, key, path, body)
    drain(fake.services)
    data = poll(fake.client, key, ref_id)
    assert data["status"] == "success", data
    return job_of(fake.services, api_key, ref_id), data


def test_standard_maps_every_field(fake, key, api_key, photos):
    job, data = run(fake, key, api_key, "standard", standard_body(
        photos, spaceType="garden", spaceStyle="boho", spaceColor="set_3",
        materialsIds=["paper_wallpaper", "particle_board", "porcelain_tile"],
        renovateType="exterior", styleUrl=photos.style))
    request = job.request
    assert job.task.value == "restyle"
    assert (request.room_type, request.style, request.exterior) == ("garden", "bohemian", True)
    assert request.palette == ",".join(resources().space_colors["set_3"])
    assert request.materials == ["Paper wallpaper", "Particle board", "Porcelain tile"]
    assert request.reference_image and request.reference_image.startswith("in-")
    assert request.n == 4 and len(data["result"]) == 4
    # Each variant is its own image, in order.
    colors = [Image.open(io.BytesIO(fake.client.get(url).content)).convert("RGB").getpixel((0, 0))
              for url in data["result"]]
    assert colors == VARIANT_COLORS[:4]


def test_standard_accepts_materials_as_one_string_and_empty_optionals(fake, key, api_key, photos):
    job, _ = run(fake, key, api_key, "standard", standard_body(
        photos, materialsIds="marble, oak_wood", spaceColor="", styleUrl=""))
    assert job.request.materials == ["Marble", "Oak wood"]
    assert job.request.palette is None and job.request.reference_image is None


@pytest.mark.parametrize(("model", "task"), [("spacely-v1", "restyle"),
                                             ("spacely-unfurnished-space", "stage"),
                                             ("spacely-style-transfer", "style_transfer")])
def test_model_picks_the_task(fake, key, api_key, photos, model, task):
    job, _ = run(fake, key, api_key, "standard",
                 standard_body(photos, model=model, styleUrl=photos.style))
    assert job.task.value == task


def test_style_transfer_model_needs_a_style_url(fake, key, photos):
    response = fake.client.post("/api/v1/generate/standard", headers=key,
                                json=standard_body(photos, model="spacely-style-transfer"))
    assert_error(response, 400, "invalid_request", "styleUrl")


def test_advance_maps_prompt_and_negative_prompt(fake, key, api_key, photos):
    job, data = run(fake, key, api_key, "advance", {
        "model": "spacely-v1", "imageUrl": photos.room, "prompt": "green velvet sofa",
        "nPrompt": "people, text", "renovateType": "commercial"})
    assert job.task.value == "restyle" and len(data["result"]) == 1
    assert (job.request.prompt, job.request.negative_prompt) == ("green velvet sofa", "people, text")
    assert job.request.exterior is False


def test_advance_accepts_residential_and_commercial_only(fake, key, photos):
    response = fake.client.post("/api/v1/generate/advance", headers=key, json={
        "model": "spacely-v1", "imageUrl": photos.room, "renovateType": "exterior"})
    assert_error(response, 400, "invalid_value", "renovateType", "residential, commercial")


def test_style_transfer_endpoint(fake, key, api_key, photos):
    job, data = run(fake, key, api_key, "style-transfer", {
        "imageUrl": photos.room, "spaceType": "bedroom", "styleImageUrl": photos.style,
        "renovateType": "residential"})
    assert job.task.value == "style_transfer" and job.request.room_type == "bedroom"
    stored = fake.services.storage.get(job.request.reference_image)
    assert Image.open(io.BytesIO(stored)).size == (200, 150)


def test_empty_room_endpoint_maps_its_optional_fields(fake, key, api_key, photos):
    job, _ = run(fake, key, api_key, "empty-room", {
        "imageUrl": photos.room, "spaceType": "kitchen", "spaceStyle": "japandi",
        "spaceColor": "set_40", "materialsIds": ["granite"], "renovateType": "residential"})
    assert job.task.value == "empty_room"
    assert (job.request.room_type, job.request.style, job.request.materials) == (
        "kitchen", "japandi", ["Granite"])
    job, _ = run(fake, key, api_key, "empty-room", {"imageUrl": photos.room})
    assert job.request.room_type is None and job.request.style is None


@pytest.mark.parametrize(("path", "exact"), [("color-transfer", False), ("color-transfer-exact", True)])
def test_color_transfer_endpoints(fake, key, api_key, photos, path, exact):
    job, _ = run(fake, key, api_key, path, {"imageUrl": photos.room, "area": "ceiling",
                                           "color": "a3b18a"})
    assert (job.task.value, job.request.area, job.request.color, job.request.exact_color) == (
        "recolor", "ceiling", "#A3B18A", exact)


@pytest.mark.parametrize(("field", "value", "listed"), [
    ("area", "roof", "wall, ceiling, floor"), ("color", "green", "#A3B18A")])
def test_color_transfer_refuses_unknown_area_and_colour(fake, key, photos, field, value, listed):
    body = {"imageUrl": photos.room, "area": "wall", "color": "#A3B18A", field: value}
    response = fake.client.post("/api/v1/generate/color-transfer", headers=key, json=body)
    assert_error(response, 400, "invalid_value", field, listed)


def test_text_to_image_endpoint(fake, key, api_key):
    job, data = run(fake, key, api_key, "text-to-image",
                    {"prompt": "a cosy japandi bedroom", "nPrompt": "clutter"})
    assert job.task.value == "text_to_image" and job.request.image is None
    assert (job.request.prompt, job.request.negative_prompt) == ("a cosy japandi bedroom", "clutter")
    assert Image.open(io.BytesIO(fake.client.get(data["result"][0]).content)).size == (256, 192)


def test_text_to_image_needs_a_prompt(fake, key):
    response = fake.client.post("/api/v1/generate/text-to-image", headers=key, json={"prompt": ""})
    assert_error(response, 400, "invalid_request", "prompt")
    response = fake.client.post("/api/v1/generate/text-to-image", headers=key, json={})
    assert_error(response, 400, "invalid_request", "prompt: Field required")


def test_webhook_url_is_passed_to_the_job_on_every_endpoint(fake, key, api_key, photos):
    hook = "https://hooks.example.com/spacely"
    bodies = {
        "standard": standard_body(photos),
        "advance": {"model": "spacely-v1", "imageUrl": photos.room, "renovateType": "residential"},
        "style-transfer": {"imageUrl": photos.room, "spaceType": "bedroom",
                           "styleImageUrl": photos.style, "renovateType": "residential"},
        "empty-room": {"imageUrl": photos.room},
        "color-transfer": {"imageUrl": photos.room, "area": "wall", "color": "#A3B18A"},
        "color-transfer-exact": {"imageUrl": photos.room, "area": "wall", "color": "#A3B18A"},
        "text-to-image": {"prompt": "a room"},
    }
    for path, body in bodies.items():
        ref_id = submit(fake.client, key, path, {**body, "webhookUrl": hook})
        job = job_of(fake.services, api_key, ref_id)
        assert job.request.webhook == hook, path
        assert job.request.webhook_events == ["job.succeeded", "job.failed"], path
    no_hook = job_of(fake.services, api_key, submit(fake.client, key, "empty-room", bodies["empty-room"]))
    assert no_hook.request.webhook is None


# -- enumerations --------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value", "accepted"), [
    ("model", "spacely-v9", "spacely-v1, spacely-unfurnished-space, spacely-style-transfer"),
    ("spaceType", "spaceship", "living_room"),
    ("spaceStyle", "gothic", "industrial_loft"),
    ("spaceColor", "set_41", "set_40"),
    ("materialsIds", ["paper_wallpaper", "unobtainium"], "porcelain_tile"),
    ("renovateType", "underwater", "residential, commercial, exterior"),
])
def test_unknown_values_get_400_listing_the_accepted_ones(client, key, photos, services, field,
                                                         value, accepted):
    response = client.post("/api/v1/generate/standard", headers=key,
                           json=standard_body(photos, **{field: value}))
    assert_error(response, 400, "invalid_value", field, "accepted:", accepted)
    assert drain(services) == 0


def test_resources_lists_every_enumeration_and_what_the_engine_runs(client):
    response = client.get("/api/v1/resources")  # public, like the native catalog
    assert response.status_code == 200
    data = response.json()["data"]
    ids = {name: [entry["id"] for entry in data[name]]
           for name in ("models", "renovateTypes", "spaceTypes", "spaceStyles", "spaceColors",
                        "materials", "areas")}
    for documented in ("bedroom", "living_room", "kitchen"):
        assert documented in ids["spaceTypes"]
    for documented in ("modern", "minimalist", "industrial_loft"):
        assert documented in ids["spaceStyles"]
    assert ids["spaceColors"] == [f"set_{n}" for n in range(1, 41)]
    for documented in ("paper_wallpaper", "particle_board", "porcelain_tile"):
        assert documented in ids["materials"]
    assert ids["renovateTypes"] == ["residential", "commercial", "exterior"]
    assert ids["areas"] == ["wall", "ceiling", "floor"]
    assert {m["id"]: m["supported"] for m in data["models"]} == {
        "spacely-v1": True, "spacely-unfurnished-space": False, "spacely-style-transfer": False}
    endpoints = {e["path"]: e["supported"] for e in data["endpoints"]}
    assert endpoints["/api/v1/generate/color-transfer"] is True
    assert endpoints["/api/v1/generate/empty-room"] is False
    assert endpoints["/api/v1/generate/furniture-placement"] is True  # the preview engine places
    assert data["standardVariants"] == 4


def test_every_spacely_value_maps_to_the_canonical_catalog():
    res = resources()
    assert set(res.space_types.values()) <= set(room_types())
    assert set(res.space_styles.values()) <= set(styles())
    assert all(len(colors) >= 3 and all(c.startswith("#") and len(c) == 7 for c in colors)
               for colors in res.space_colors.values())


def test_every_listed_style_and_space_type_is_accepted(fake, key, photos):
    data = fake.client.get("/api/v1/resources").json()["data"]
    for style in data["spaceStyles"]:
        response = fake.client.post("/api/v1/generate/standard", headers=key,
                                    json=standard_body(photos, spaceStyle=style["id"]))
        assert response.status_code == 200, response.text
    for space in data["spaceTypes"]:
        response = fake.client.post("/api/v1/generate/standard", headers=key,
                                    json=standard_body(photos, spaceType=space["id"]))
        assert response.status_code == 200, response.text


# -- authentication ------------------------------------------------------------------------

def test_missing_key_is_401(client, photos):
    response = client.post("/api/v1/generate/standard", json=standard_body(photos))
    assert_error(response, 401, "unauthorized", "X-API-KEY")
    response = client.get("/api/v1/generate/poll-result", params={"refId": str(uuid.uuid4())})
    assert_error(response, 401, "unauthorized", "X-API-KEY")


def test_wrong_or_revoked_key_is_401(client, photos, services, api_key):
    response = client.post("/api/v1/generate/standard", headers={"X-API-KEY": "rr_wrong"},
                           json=standard_body(photos))
    assert_error(response, 401, "unauthorized", "not valid")
    services.keys.revoke(services.keys.authenticate(api_key).id)
    services.keys._cache.clear()
    response = client.get("/api/v1/generate/poll-result", params={"refId": str(uuid.uuid4())},
                          headers={"X-API-KEY": api_key})
    assert_error(response, 401, "unauthorized")


def test_key_is_checked_before_the_body(client):
    response = client.post("/api/v1/generate/standard", json={"model": "nope"})
    assert response.status_code == 401


def test_native_and_spacely_share_keys_and_jobs(client, key, auth, services, photos):
    ref_id = submit(client, key, "color-transfer",
                    {"imageUrl": photos.room, "area": "floor", "color": "#884422"})
    native = client.get(f"/v1/jobs/{ref_id}", headers=auth)
    assert native.status_code == 200 and native.json()["task"] == "recolor"
    drain(services)
    assert poll(client, {"Authorization": auth["Authorization"]}, ref_id)["status"] == "success"


# -- poll-result ---------------------------------------------------------------------------

def test_poll_without_ref_id_is_400_with_a_message(client, key):
    response = client.get("/api/v1/generate/poll-result", headers=key)
    assert_error(response, 400, "invalid_request", "refId")
    response = client.get("/api/v1/generate/poll-result?refId=", headers=key)
    assert_error(response, 400, "invalid_request", "refId")


def test_poll_unknown_or_foreign_ref_id_is_400(client, key, services, photos):
    response = client.get("/api/v1/generate/poll-result", params={"refId": str(uuid.uuid4())},
                          headers=key)
    assert_error(response, 400, "not_found", "refId")
    response = client.get("/api/v1/generate/poll-result", params={"refId": "not-a-uuid"},
                          headers=key)
    assert_error(response, 400, "not_found")

    ref_id = submit(client, key, "standard", standard_body(photos))
    other = {"X-API-KEY": services.keys.create("someone else")[1]}
    response = client.get("/api/v1/generate/poll-result", params={"refId": ref_id}, headers=other)
    assert_error(response, 400, "not_found", ref_id)


def test_poll_shows_progress_while_running(client, key, services, photos):
    ref_id = submit(client, key, "standard", standard_body(photos))
    claim = services.queue.claim("test-worker", services.engine.name)
    assert claim is not None and claim.rows[0].id == ref_id
    services.queue.set_progress(claim.token, {ref_id: 0.5})
    assert poll(client, key, ref_id) == {"refId": ref_id, "status": "processing", "result": [],
                                          "progress": 50}


def test_failed_job_is_failed_with_a_message(client, key, services, photos):
    ref_id = submit(client, key, "standard", standard_body(photos))
    services.queue.fail(ref_id, "generation_failed", "the GPU ran out of memory")
    assert poll(client, key, ref_id) == {
        "refId": ref_id, "status": "failed", "result": [], "progress": 0,
        "message": "the GPU ran out of memory", "errorCode": "generation_failed"}


def test_canceled_job_reads_as_failed(client, key, auth, photos):
    ref_id = submit(client, key, "standard", standard_body(photos))
    assert client.post(f"/v1/jobs/{ref_id}/cancel", headers=auth).status_code == 200
    data = poll(client, key, ref_id)
    assert data["status"] == "failed" and data["errorCode"] == "canceled"


def test_result_body_is_the_poll_body(client, key, services, photos, api_key):
    ref_id = submit(client, key, "standard", standard_body(photos))
    drain(services)
    body = result_body(job_of(services, api_key, ref_id))
    response = client.get("/api/v1/generate/poll-result", params={"refId": ref_id}, headers=key)
    assert body == response.json() and body["data"]["status"] == "success"


# -- image URLs ----------------------------------------------------------------------------

def test_unreachable_image_url_is_400_at_submit(client, key, photos):
    response = client.post("/api/v1/generate/standard", headers=key,
                           json=standard_body(photos, imageUrl=photos.missing))
    assert_error(response, 400, "fetch_failed", photos.missing, "HTTP 404")
    closed = "http://127.0.0.1:9/room.jpg"
    response = client.post("/api/v1/generate/standard", headers=key,
                           json=standard_body(photos, imageUrl=closed))
    assert_error(response, 400, "fetch_failed", closed)


def test_non_image_url_is_400_at_submit(client, key, photos, services):
    response = client.post("/api/v1/generate/standard", headers=key,
                           json=standard_body(photos, imageUrl=photos.text))
    assert_error(response, 400, "invalid_image", "not an image")
    assert drain(services) == 0


def test_private_urls_are_refused_by_default(photos, tmp_path, api_key, key, services):
    strict = services.settings.model_copy(update={"allow_private_urls": False})
    strict_services = build_services(strict)
    with TestClient(create_app(strict, services=strict_services, janitor=False),
                    base_url=BASE_URL) as client:
        response = client.post("/api/v1/generate/standard", headers=key, json=standard_body(photos))
        assert_error(response, 400, "url_refused", "private")
        response = client.post("/api/v1/generate/standard", headers=key,
                               json=standard_body(photos, imageUrl="ftp://example.com/room.jpg"))
        assert_error(response, 400, "invalid_request", "http(s)")
    strict_services.db.dispose()


def test_too_large_image_is_400_not_413(settings, photos, key):
    small = settings.model_copy(update={"max_input_bytes": 1000})
    services = build_services(small)
    with TestClient(create_app(small, services=services, janitor=False), base_url=BASE_URL) as client:
        response = client.post("/api/v1/generate/standard", headers=key, json=standard_body(photos))
        assert_error(response, 400, "image_too_large")
    services.db.dispose()


# -- credits and other errors --------------------------------------------------------------

def test_insufficient_credits_is_400_with_its_own_code(client, services, photos):
    plaintext = services.keys.create("small plan", credits=3)[1]
    poor = {"X-API-KEY": plaintext}
    response = client.post("/api/v1/generate/standard", headers=poor, json=standard_body(photos))
    assert_error(response, 400, "insufficient_credits", "costs 4", "3 left")
    # A one-image job still fits.
    submit(client, poor, "color-transfer", {"imageUrl": photos.room, "area": "wall",
                                            "color": "#A3B18A"})


def test_validation_errors_are_400_in_the_spacely_shape(client, key):
    response = client.post("/api/v1/generate/standard", headers=key,
                           json={"model": "spacely-v1", "spaceType": "bedroom"})
    error = assert_error(response, 400, "invalid_request", "imageUrl: Field required")
    assert "spaceStyle: Field required" in error["message"]
    response = client.post("/api/v1/generate/standard",
                           headers={**key, "Content-Type": "application/json"}, content=b"{not json")
    assert_error(response, 400, "invalid_request")
    response = client.post("/api/v1/generate/advance", headers=key, json={
        "model": "spacely-v1", "imageUrl": "https://example.com/a.jpg", "renovateType": "residential",
        "prompt": "x" * 2001})
    assert_error(response, 400, "invalid_request", "prompt")


def test_unknown_route_and_wrong_method_are_400(client, key):
    assert_error(client.get("/api/v1/generate/nothing", headers=key), 400, "not_found")
    assert_error(client.get("/api/v1/generate/standard", headers=key), 400, "http_405")


def test_unexpected_failure_is_500_in_the_spacely_shape(app, services, key, monkeypatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services.jobs, "get", broken)
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/generate/poll-result", params={"refId": str(uuid.uuid4())},
                              headers=key)
    error = assert_error(response, 500, "internal")
    assert "disk on fire" not in error["message"]


def test_native_errors_keep_the_native_shape(client, auth):
    response = client.get(f"/v1/jobs/{uuid.uuid4()}", headers=auth)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# -- OpenAPI -------------------------------------------------------------------------------

def test_openapi_documents_the_routes_and_their_error_shape(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    generate = [f"/api/v1/generate/{name}" for name in (
        "standard", "advance", "style-transfer", "empty-room", "color-transfer",
        "color-transfer-exact", "text-to-image", "furniture-placement")]
    for path in generate:
        responses = paths[path]["post"]["responses"]
        assert {"200", "400", "401", "500"} <= set(responses) and "422" not in responses, path
        assert responses["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/SpacelyError")
    poll_responses = paths["/api/v1/generate/poll-result"]["get"]["responses"]
    assert {"200", "400", "401", "500"} <= set(poll_responses) and "422" not in poll_responses
    assert "/api/v1/resources" in paths
    schemes = schema["components"]["securitySchemes"].values()
    assert any(s.get("in") == "header" and s.get("name") == "X-API-KEY" for s in schemes)


# -- browser clients -----------------------------------------------------------------------

def test_a_json_body_sent_as_text_plain_is_read_as_json(client, key, photos):
    # What fetch(url, {method: "POST", body: JSON.stringify(...)}) sends without a Content-Type.
    import json

    response = client.post("/api/v1/generate/standard",
                           headers={**key, "Content-Type": "text/plain;charset=UTF-8"},
                           content=json.dumps(standard_body(photos)))
    assert response.status_code == 200, response.text
    response = client.post("/api/v1/generate/standard",
                           headers={**key, "Content-Type": "text/plain"}, content=b"model=spacely-v1")
    assert_error(response, 400, "invalid_request", "JSON")


def test_browsers_may_call_the_api_from_another_origin(client, key, photos):
    preflight = client.options("/api/v1/generate/standard", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key,content-type"})
    assert preflight.status_code == 200
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    response = client.post("/api/v1/generate/standard", json=standard_body(photos),
                           headers={**key, "Origin": "https://app.example.com"})
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"
