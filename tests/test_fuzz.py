"""Schemathesis over the whole OpenAPI schema (native /v1, Spacely /api/v1, Luw /v2, Replicate,
files, operations): a few thousand generated requests, valid and not, with a real key; no answer
is a 5xx, and every status is one the route documents. `bench/fuzz.py` runs the same for longer.

So that the fuzzer reaches job logic, three of four cases of the operations that create jobs are
valid examples (`VALID`), or, for the operations without one, get a valid input image in place
of the generated one (a data URI, or this server's own file URL for the dialects that take URLs)
and no webhook; every job created is then followed through its dialect's links: get, cancel,
events (each answer checked the same way)."""

from __future__ import annotations

import atexit
import base64
import io
import itertools
import json
import os
import shutil
import socket
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, status_code_conformance
from sqlalchemy import func, select

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.db.tables import jobs
from roomrender.services import build_services
from tests.databases import isolated_database

# bench/fuzz.py raises it for a longer run, and reads the statuses seen in the report file.
EXAMPLES_PER_OPERATION = int(os.environ.get("ROOMRENDER_FUZZ_EXAMPLES", "10"))
REPORT = os.environ.get("ROOMRENDER_FUZZ_REPORT")
STATUSES: Counter[int] = Counter()
# Cases sent, and what the links did (bench/fuzz.py reads them in the report).
COUNTS: Counter[str] = Counter()


def fuzzed_app(data_dir: Path):  # type: ignore[no-untyped-def]
    """The app on its own database (SQLite, or a fresh PostgreSQL schema when
    ROOMRENDER_TEST_DATABASE_URL names one), with a key (returned)."""
    isolated = isolated_database()
    database_url = isolated.__enter__()
    atexit.register(isolated.__exit__, None, None, None)
    services = build_services(Settings(data_dir=data_dir, database_url=database_url,
                                       public_base_url="http://testserver",
                                       fetch_timeout_seconds=2.0))
    plaintext = services.keys.create("fuzz")[1]
    return create_app(services.settings, services=services, workers=0, janitor=False,
                      webhooks=False), plaintext


DATA_DIR = Path(tempfile.mkdtemp(prefix="roomrender-fuzz-"))
atexit.register(shutil.rmtree, DATA_DIR, True)
APP, KEY = fuzzed_app(DATA_DIR)
SERVICES = APP.state.services


def _room_photo() -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (160, 120), (200, 190, 170))
    image.paste((90, 70, 50), (0, 80, 160, 120))  # a floor
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


PHOTO = _room_photo()
DATA_URI = "data:image/jpeg;base64," + base64.b64encode(PHOTO).decode()
# This server's own file URL of an upload by the fuzzing key (taken without any fetch).
OWN_URL = SERVICES.jobs.store_upload(SERVICES.keys.authenticate(KEY), PHOTO, "room.jpg").url
# Input fields that take an image: a data URI where the dialect takes one, else a URL.
IMAGE_FIELDS = {"image": DATA_URI, "imageUrl": OWN_URL, "styleImageUrl": OWN_URL,
                "productImageUrl": OWN_URL, "reference_image": DATA_URI}
WEBHOOK_FIELDS = ("webhook", "webhookUrl", "webhook_url")
# The operations that create jobs, and how each dialect's job is followed (get, cancel, events).
CREATING = {("POST", "/v1/jobs"), ("POST", "/v2/generate"), ("POST", "/v1/predictions"),
            ("POST", "/v1/models/{owner}/{name}/predictions")} | {
    ("POST", path) for path in ("/api/v1/generate/standard", "/api/v1/generate/advance",
                                "/api/v1/generate/style-transfer", "/api/v1/generate/empty-room",
                                "/api/v1/generate/color-transfer",
                                "/api/v1/generate/color-transfer-exact",
                                "/api/v1/generate/text-to-image",
                                "/api/v1/generate/furniture-placement",
                                "/api/v1/generate/decoration-placement",
                                "/api/v1/generate/two-point-perspective",
                                "/api/v1/generate/one-point-perspective")}
# A valid body (and path) for each operation that creates jobs on the preview engine.
ROOM = {"spaceType": "living_room", "renovateType": "residential"}
VALID: dict[tuple[str, str], tuple[dict[str, str] | None, dict[str, object]]] = {
    ("POST", "/v1/jobs"): (None, {"task": "restyle", "image": DATA_URI, "style": "modern"}),
    ("POST", "/v1/models/{owner}/{name}/predictions"): (
        {"owner": "adirik", "name": "interior-design"},
        {"input": {"image": DATA_URI, "prompt": "a calm living room"}}),
    ("POST", "/v1/predictions"): (None, {
        "version": "76604baddc85b1b4616e1c6475eca080da339c8875bd4996705440484a6eac38",
        "input": {"image": DATA_URI, "prompt": "a calm living room"}}),
    ("POST", "/v2/generate"): (None, {"model": "interior", "image": DATA_URI,
                                      "styles": "Modern"}),
    ("POST", "/api/v1/generate/standard"): (None, {"model": "spacely-v1", "imageUrl": OWN_URL,
                                                   "spaceStyle": "modern", **ROOM}),
    ("POST", "/api/v1/generate/advance"): (None, {"model": "spacely-v1", "imageUrl": OWN_URL,
                                                  "renovateType": "residential",
                                                  "prompt": "a calm living room"}),
    ("POST", "/api/v1/generate/color-transfer"): (None, {"imageUrl": OWN_URL, "area": "wall",
                                                         "color": "#A3B18A"}),
    ("POST", "/api/v1/generate/color-transfer-exact"): (None, {"imageUrl": OWN_URL,
                                                               "area": "wall",
                                                               "color": "#A3B18A"}),
}
_TURNS = itertools.count()

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# Valid requests and invalid ones (wrong types, missing fields, values out of range).
schema.config.generation.update(modes=list(GenerationMode), allow_x00=True)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated URLs name any host: none is resolved, so nothing leaves the machine (they are
    refused as unresolvable, which is what the server answers for such hosts anyway)."""
    def unresolvable(host: object, *_args: object, **_kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r}: not resolved during fuzzing")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    write_report()


def write_report() -> None:
    """The figures so far, for bench/fuzz.py (written every 1,000 cases too: a run stopped at its
    timeout still tells what it did)."""
    if REPORT:
        with SERVICES.db.connect() as connection:
            created = connection.execute(select(func.count()).select_from(jobs)).scalar_one()
        Path(REPORT).write_text(json.dumps({
            "statuses": {str(k): v for k, v in sorted(STATUSES.items())},
            "cases": COUNTS["cases"], "linked": COUNTS["linked"], "jobs": created}))


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case):  # type: ignore[no-untyped-def]
    creating = (case.method.upper(), case.path) in CREATING
    if creating and next(_TURNS) % 4 != 3:
        path_parameters, body = VALID.get((case.method.upper(), case.path), (None, None))
        if body is None:
            case.body = _with_valid_inputs(case.body)
        else:
            case.body = json.loads(json.dumps(body))
            case.media_type = "application/json"
            # A generated Idempotency-Key repeats: a valid example creates a job of its own.
            case.headers = {name: value for name, value in (case.headers or {}).items()
                            if name.lower() != "idempotency-key"}
            if path_parameters:
                case.path_parameters = dict(path_parameters)
    response = _send(case)
    if creating and 200 <= response.status_code < 300:
        COUNTS["created"] += 1
        _follow(case.path, response.json())


HEADERS = {"Authorization": f"Bearer {KEY}", "X-API-KEY": KEY}
CHECKS = [not_a_server_error, status_code_conformance]


def _send(case):  # type: ignore[no-untyped-def]
    response = case.call_and_validate(headers=HEADERS, checks=CHECKS)
    STATUSES[response.status_code] += 1
    COUNTS["cases"] += 1
    if COUNTS["cases"] % 1000 == 0:
        write_report()
    return response


def _with_valid_inputs(body: object) -> object:
    """The generated body with valid images in its image fields (Replicate's under `input`)."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if isinstance(body.get("input"), dict):
        body["input"] = _with_valid_inputs(body["input"])
    for field, value in IMAGE_FIELDS.items():
        if field in body:
            body[field] = value
    for field in WEBHOOK_FIELDS:
        body.pop(field, None)
    return body


def _follow(path: str, created: object) -> None:
    """The created job through its dialect's links: get, cancel (then it has ended), events."""
    if not isinstance(created, dict):
        return
    links: list[tuple[str, str, dict[str, object]]] = []
    if path == "/v1/jobs":
        job = {"job_id": created["id"]}
        links = [("GET", "/v1/jobs/{job_id}", job), ("POST", "/v1/jobs/{job_id}/cancel", job),
                 ("GET", "/v1/jobs/{job_id}/events", job)]
    elif path.startswith("/v1/"):
        prediction = {"prediction_id": created["id"]}
        links = [("GET", "/v1/predictions/{prediction_id}", prediction),
                 ("POST", "/v1/predictions/{prediction_id}/cancel", prediction),
                 ("GET", "/v1/predictions/{prediction_id}/stream", prediction)]
    elif path.startswith("/api/v1/") and isinstance(created.get("data"), str):
        links = [("GET", "/api/v1/generate/poll-result", {"refId": created["data"]})]
    elif path == "/v2/generate" and created.get("processing_url"):
        links = [("GET", "/v2/results", {"processing_url": created["processing_url"]})]
    for method, target, parameters in links:
        operation = schema[target][method]
        in_path = "{" in target
        linked = operation.Case(path_parameters=parameters if in_path else None,
                                query=None if in_path else parameters)
        _send(linked)
        COUNTS["linked"] += 1
