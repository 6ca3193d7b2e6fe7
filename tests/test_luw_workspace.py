"""Luw's workspace (/v2/boards, /v2/personas) as the official client drives it.

Request and answer shapes are those of Luvi-io/luw-mcp `src/tools/workspace.ts` (tools
`luw_projects` and `luw_personas`): the paths and JSON bodies it sends (`name`, `parent_id`,
`url`, `control_image`, `folder_id`, `extras`; `name`, `title`, `knows`, `profession`; `image`,
`slot`, `info`, `extras`; `page`, `limit + 1`, `slim=1` on `ft-<profession>`) and the fields it
reads back (`board.id`, `personas[]`, `persona`, `trainings[]` with `id/slot/image/info`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from roomrender.app import create_app
from roomrender.engines.base import BatchContext, EngineJob, JobResult
from roomrender.services import Services, build_services
from tests.conftest import BASE_URL, data_uri, drain
from tests.fakes import VARIANT_COLORS, AllTasksEngine

RED, GREEN, BLUE = (200, 30, 30), (30, 200, 30), (30, 30, 200)


def png(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return data_uri(out.getvalue(), "image/png")


class SeeingEngine(AllTasksEngine):
    """The fake engine, noting the centre pixel of every input image it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, tuple[int, ...]]] = []

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        for job in batch:
            self.inputs.append({name: picture.convert("RGB").getpixel(
                (picture.width // 2, picture.height // 2)) for name, picture in job.images.items()})
        return super().generate(batch, context)


@pytest.fixture
def engine() -> SeeingEngine:
    return SeeingEngine()


@pytest.fixture
def svc(settings, engine: SeeingEngine) -> Iterator[Services]:
    built = build_services(settings, engine=engine)
    yield built
    built.db.dispose()


@pytest.fixture
def client(svc: Services) -> Iterator[TestClient]:
    app = create_app(svc.settings, services=svc, workers=0, janitor=False)
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


def bearer(svc: Services, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {svc.keys.create(name)[1]}"}


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] is True
    return body


def pixel(client: TestClient, url: str) -> tuple[int, ...]:
    fetched = client.get(url)
    assert fetched.status_code == 200, fetched.text
    picture = Image.open(io.BytesIO(fetched.content)).convert("RGB")
    return picture.getpixel((picture.width // 2, picture.height // 2))


def close(seen: tuple[int, ...], color: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(seen, color, strict=True))


def test_a_result_kept_on_a_board_and_moved_between_folders(client, svc, room_jpeg) -> None:
    auth = bearer(svc, "designer")
    started = ok(client.post("/v2/generate", headers=auth,
                             data={"model": "interior", "image": data_uri(room_jpeg),
                                   "styles": "Modern"}))
    drain(svc)
    result = ok(client.post("/v2/results", headers=auth,
                            data={"processing_url": started["processing_url"]}))
    output = result["output"][0] if isinstance(result["output"], list) else result["output"]

    # luw_projects: create → board.id; create_folder; add_media; move_media; get.
    board_id = ok(client.post("/v2/boards", headers=auth, json={"name": "Loft"}))["board"]["id"]
    assert isinstance(board_id, int) and board_id > 0
    first = ok(client.post(f"/v2/boards/{board_id}/folders", headers=auth,
                           json={"name": "Drafts"}))["folder"]
    second = ok(client.post(f"/v2/boards/{board_id}/folders", headers=auth,
                            json={"name": "Final", "parent_id": first["id"]}))["folder"]
    assert second["parent_id"] == first["id"]
    media = ok(client.post(f"/v2/boards/{board_id}/media", headers=auth,
                           json={"url": output, "control_image": data_uri(room_jpeg),
                                 "folder_id": first["id"],
                                 "extras": '{"prompt": "modern loft"}'}))["media"]
    assert media["folder_id"] == first["id"] and media["id"] > 0
    # The board keeps a copy of the result's pixels, under its own URL.
    assert media["url"] != output
    assert pixel(client, media["url"]) == VARIANT_COLORS[0]

    moved = ok(client.put(f"/v2/boards/{board_id}/media/{media['id']}/move", headers=auth,
                          json={"folder_id": second["id"]}))["media"]
    assert moved["folder_id"] == second["id"]
    board = ok(client.get(f"/v2/boards/{board_id}", headers=auth))["board"]
    assert [(m["id"], m["folder_id"]) for m in board["media"]] == [(media["id"], second["id"])]
    # To the root (the client sends folder_id: null), then out.
    assert ok(client.put(f"/v2/boards/{board_id}/media/{media['id']}/move", headers=auth,
                         json={"folder_id": None}))["media"]["folder_id"] is None
    ok(client.put(f"/v2/boards/{board_id}", headers=auth, json={"name": "Loft, v2"}))
    listed = ok(client.get("/v2/boards", headers=auth))["boards"]
    assert [(b["id"], b["name"]) for b in listed] == [(board_id, "Loft, v2")]
    ok(client.delete(f"/v2/boards/{board_id}/media/{media['id']}", headers=auth))
    assert client.get(media["url"]).status_code == 404
    ok(client.delete(f"/v2/boards/{board_id}/folders/{first['id']}", headers=auth))
    assert ok(client.get(f"/v2/boards/{board_id}/folders", headers=auth))["folders"] == []
    ok(client.delete(f"/v2/boards/{board_id}", headers=auth))
    assert client.get(f"/v2/boards/{board_id}", headers=auth).status_code == 404


def test_a_persona_s_slots_condition_a_generate(client, svc, engine, room_jpeg) -> None:
    auth = bearer(svc, "designer")
    persona = ok(client.post("/v2/personas", headers=auth, json={
        "name": "Nordic", "title": "Pale wood", "knows": "Scandinavian", "profession": "Interior",
    }))["persona"]
    pid = persona["id"]
    assert isinstance(pid, int) and pid > 0
    ok(client.post(f"/v2/personas/{pid}/trainings", headers=auth,
                   json={"image": png(RED), "slot": 1, "info": "style"}))
    # Setting a slot again replaces what it held.
    ok(client.post(f"/v2/personas/{pid}/trainings", headers=auth,
                   json={"image": png(GREEN), "slot": 1, "info": "style, better"}))
    ok(client.post(f"/v2/personas/{pid}/trainings", headers=auth,
                   json={"image": png(BLUE, (320, 240)), "slot": 7, "info": "my room"}))
    trainings = ok(client.get(f"/v2/personas/{pid}/trainings", headers=auth))["trainings"]
    assert sorted((t["slot"], t["info"]) for t in trainings) == [(1, "style, better"), (7, "my room")]
    assert close(pixel(client, next(t["image"] for t in trainings if t["slot"] == 1)), GREEN)

    # No image given: slot 7 is the input, slot 1 the style reference (style transfer).
    started = ok(client.post("/v2/generate", headers=auth,
                             data={"model": "interior", "pid": str(pid)}))
    drain(svc)
    result = ok(client.post("/v2/results", headers=auth,
                            data={"processing_url": started["processing_url"]}))
    assert result["output"]
    assert engine.seen[-1].task.value == "style_transfer"
    assert close(engine.inputs[-1]["image"], BLUE)
    assert close(engine.inputs[-1]["reference_image"], GREEN)

    # An image given wins over slot 7; the reference still comes from the persona.
    ok(client.post("/v2/generate", headers=auth,
                   data={"model": "interior", "pid": pid, "image": data_uri(room_jpeg)}))
    drain(svc)
    assert not close(engine.inputs[-1]["image"], BLUE)
    assert close(engine.inputs[-1]["reference_image"], GREEN)
    got = ok(client.get(f"/v2/personas/{pid}", headers=auth))["persona"]
    assert got["generations_count"] == 2

    # Cleared slot 7: a generate with the persona and no image is refused, in Luw's shape.
    assert ok(client.delete(f"/v2/personas/{pid}/trainings/slot/7", headers=auth))["cleared"] == 1
    refused = client.post("/v2/generate", headers=auth, data={"model": "interior", "pid": pid})
    assert refused.status_code == 400 and refused.json()["status"] is False


def test_personas_listing_per_profession_pages_as_the_client_asks(client, svc) -> None:
    auth = bearer(svc, "designer")
    for index in range(5):
        ok(client.post("/v2/personas", headers=auth,
                       json={"name": f"P{index}", "profession": "Interior"}))
    ok(client.post("/v2/personas", headers=auth, json={"name": "Out", "profession": "Exterior"}))
    # The client asks for limit + 1 to learn whether there is a next page.
    first = ok(client.get("/v2/personas/ft-Interior", headers=auth,
                          params={"page": 1, "limit": 3, "slim": 1}))["personas"]
    second = ok(client.get("/v2/personas/ft-interior", headers=auth,
                           params={"page": 2, "limit": 3, "slim": 1}))["personas"]
    assert len(first) == 3 and len(second) == 2
    assert {p["name"] for p in first + second} == {f"P{i}" for i in range(5)}
    assert all("trainings" not in p and p["trainings_count"] == 0 for p in first)
    everything = ok(client.get("/v2/personas", headers=auth))["personas"]
    assert {p["name"] for p in everything} == {"P0", "P1", "P2", "P3", "P4", "Out"}
    changed = ok(client.put(f"/v2/personas/{first[0]['id']}", headers=auth,
                            json={"title": "Warm"}))["persona"]
    assert changed["title"] == "Warm" and changed["name"] == first[0]["name"]
    ok(client.delete(f"/v2/personas/{first[0]['id']}", headers=auth))
    assert len(ok(client.get("/v2/personas", headers=auth))["personas"]) == 5


def test_another_key_s_objects_are_not_found(client, svc) -> None:
    owner, other = bearer(svc, "owner"), bearer(svc, "other")
    board = ok(client.post("/v2/boards", headers=owner, json={"name": "Mine"}))["board"]["id"]
    folder = ok(client.post(f"/v2/boards/{board}/folders", headers=owner,
                            json={"name": "F"}))["folder"]["id"]
    media = ok(client.post(f"/v2/boards/{board}/media", headers=owner,
                           json={"url": png(RED)}))["media"]["id"]
    persona = ok(client.post("/v2/personas", headers=owner, json={"name": "Mine"}))["persona"]["id"]
    training = ok(client.post(f"/v2/personas/{persona}/trainings", headers=owner,
                              json={"image": png(RED), "slot": 1}))["training"]["id"]
    calls = [
        ("GET", f"/v2/boards/{board}", None), ("PUT", f"/v2/boards/{board}", {"name": "x"}),
        ("DELETE", f"/v2/boards/{board}", None), ("GET", f"/v2/boards/{board}/folders", None),
        ("POST", f"/v2/boards/{board}/folders", {"name": "x"}),
        ("PUT", f"/v2/boards/{board}/folders/{folder}", {"name": "x"}),
        ("DELETE", f"/v2/boards/{board}/folders/{folder}", None),
        ("POST", f"/v2/boards/{board}/media", {"url": png(RED)}),
        ("PUT", f"/v2/boards/{board}/media/{media}/move", {"folder_id": folder}),
        ("DELETE", f"/v2/boards/{board}/media/{media}", None),
        ("GET", f"/v2/personas/{persona}", None), ("PUT", f"/v2/personas/{persona}", {"name": "x"}),
        ("DELETE", f"/v2/personas/{persona}", None),
        ("GET", f"/v2/personas/{persona}/trainings", None),
        ("POST", f"/v2/personas/{persona}/trainings", {"image": png(RED), "slot": 2}),
        ("PUT", f"/v2/personas/{persona}/trainings/{training}", {"info": "x"}),
        ("DELETE", f"/v2/personas/{persona}/trainings/{training}", None),
        ("DELETE", f"/v2/personas/{persona}/trainings/slot/1", None),
    ]
    for method, path, body in calls:
        answer = client.request(method, path, headers=other, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["status"] is False, (method, path)
    refused = client.post("/v2/generate", headers=other,
                          data={"model": "interior", "pid": persona, "image": png(BLUE)})
    assert refused.status_code == 404
    # Nothing changed for the owner.
    assert ok(client.get(f"/v2/boards/{board}", headers=owner))["board"]["name"] == "Mine"
    assert [t["id"] for t in ok(client.get(f"/v2/personas/{persona}/trainings",
                                           headers=owner))["trainings"]] == [training]
    assert [b["id"] for b in ok(client.get("/v2/boards", headers=other))["boards"]] == []


def test_a_persona_s_style_on_the_preview_engine_says_it_needs_the_diffusers_engine(services) -> None:
    app = create_app(services.settings, services=services, workers=0, janitor=False)
    with TestClient(app, base_url=BASE_URL) as preview:
        auth = bearer(services, "designer")
        pid = ok(preview.post("/v2/personas", headers=auth, json={"name": "Bold"}))["persona"]["id"]
        ok(preview.post(f"/v2/personas/{pid}/trainings", headers=auth,
                        json={"image": png(RED), "slot": 1}))
        refused = preview.post("/v2/generate", headers=auth,
                               data={"model": "interior", "pid": pid, "image": png(BLUE)})
    assert refused.status_code == 400
    assert "needs the diffusers engine" in refused.json()["error"]
