"""Every body the Replicate dialect answers, checked field by field against Replicate's published
OpenAPI description (tests/replicate_reference/openapi_excerpt.json, its source named inside):
required fields, types, formats, enums, and no field the description does not have, but the few
listed below with their reasons. Status codes are those the description documents."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from roomrender.api.replicate.requests import wait_seconds
from roomrender.app import create_app
from roomrender.services import Services, build_services
from tests.conftest import BASE_URL, data_uri, drain, make_room_photo
from tests.fakes import FAIL_PROMPT, AllTasksEngine

REFERENCE = json.loads((Path(__file__).parent / "replicate_reference" / "openapi_excerpt.json").read_text())
SCHEMAS = REFERENCE["components"]["schemas"]
VERSION = "76604baddc85b1b4616e1c6475eca080da339c8875bd4996705440484a6eac38"
# Where this server departs from the description, and why.
MISSING = {
    "prediction.urls.web": "roomrender has no web page for a prediction",
}
EXTRA = {
    "file.name": "the official Python client's File model requires it",
    "file.etag": "the official Python client's File model requires it",
}


def problems(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """How `value` departs from `schema` (OpenAPI 3.0 schema objects), field by field. Inside a
    referenced schema the path restarts at its name (`prediction`, `file`, ...)."""
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema, path = SCHEMAS[name], name.removeprefix("schemas_").removesuffix("_response")
    if "oneOf" in schema:
        options = [problems(value, option, path) for option in schema["oneOf"]]
        return [] if any(not found for found in options) else [f"{path}: matches no oneOf option"]
    if value is None:
        return [] if schema.get("nullable") or "type" not in schema else [f"{path}: null, not nullable"]
    kind = schema.get("type")
    found: list[str] = []
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: {value!r} is not a string"]
        if schema.get("format") == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                found.append(f"{path}: {value!r} is not a date-time")
        if schema.get("format") == "uri" and not (urlsplit(value).scheme and urlsplit(value).netloc):
            found.append(f"{path}: {value!r} is not a URI")
        if "enum" in schema and value not in schema["enum"]:
            found.append(f"{path}: {value!r} is not one of {schema['enum']}")
    elif kind == "boolean" and not isinstance(value, bool):
        found.append(f"{path}: {value!r} is not a boolean")
    elif kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        found.append(f"{path}: {value!r} is not an integer")
    elif kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        found.append(f"{path}: {value!r} is not a number")
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not an array"]
        for index, item in enumerate(value):
            found += problems(item, schema.get("items", {}), f"{path}[{index}]")
    elif kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value and f"{path}.{name}" not in MISSING:
                found.append(f"{path}.{name}: required, missing")
        for name, item in value.items():
            if name in properties:
                found += problems(item, properties[name], f"{path}.{name}")
            elif properties and not schema.get("additionalProperties") and f"{path}.{name}" not in EXTRA:
                found.append(f"{path}.{name}: not in the description")
    return found


def response_schema(path: str, method: str, status: int, media: str = "application/json") -> dict[str, Any]:
    schema: dict[str, Any] = REFERENCE["paths"][path][method]["responses"][str(status)]["content"][media]["schema"]
    return schema


def documented(path: str, method: str, status: int) -> bool:
    return str(status) in REFERENCE["paths"][path][method]["responses"]


@pytest.fixture
def fake(settings) -> Iterator[tuple[TestClient, Services, dict[str, str]]]:
    built = build_services(settings, engine=AllTasksEngine())
    app = create_app(settings, services=built, workers=0, janitor=False)
    auth = {"Authorization": f"Bearer {built.keys.create('shapes')[1]}"}
    with TestClient(app, base_url=BASE_URL) as client:
        yield client, built, auth
    built.db.dispose()


def create(client: TestClient, auth: dict[str, str], prompt: str = "a room") -> Any:
    return client.post("/v1/predictions", headers=auth, json={
        "version": VERSION, "input": {"image": data_uri(make_room_photo(64, 48)), "prompt": prompt}})


def test_predictions_in_every_state_match_the_prediction_schema(fake):
    client, services, auth = fake
    prediction = SCHEMAS["schemas_prediction_response"]
    created = create(client, auth)
    assert documented("/predictions", "post", created.status_code)
    assert problems(created.json(), prediction, "prediction") == []
    failing = create(client, auth, FAIL_PROMPT).json()
    canceled = client.post(f"/v1/predictions/{create(client, auth).json()['id']}/cancel", headers=auth)
    assert documented("/predictions/{prediction_id}/cancel", "post", canceled.status_code)
    assert problems(canceled.json(), prediction, "prediction") == []
    drain(services)
    for prediction_id, status in [(created.json()["id"], "succeeded"), (failing["id"], "failed")]:
        answer = client.get(f"/v1/predictions/{prediction_id}", headers=auth)
        assert documented("/predictions/{prediction_id}", "get", answer.status_code)
        assert answer.json()["status"] == status
        assert problems(answer.json(), prediction, "prediction") == []

    page = client.get("/v1/predictions", headers=auth)
    assert documented("/predictions", "get", page.status_code)
    assert problems(page.json(), SCHEMAS["schemas_paginated_prediction_response"], "page") == []
    assert len(page.json()["results"]) == 3


def test_the_documented_example_has_no_field_we_lack(fake):
    client, services, auth = fake
    created = create(client, auth).json()
    drain(services)
    ours = client.get(f"/v1/predictions/{created['id']}", headers=auth).json()
    example = json.loads(REFERENCE["examples"]["predictions.get"])
    assert set(example) <= set(ours)
    assert set(example["urls"]) - set(ours["urls"]) == {"web"}
    assert set(example["metrics"]) <= set(ours["metrics"])
    assert all(type(ours[name]) is type(example[name]) for name in example if example[name] is not None
               and name not in ("output", "input"))


def test_the_request_body_we_read_is_the_documented_one(fake):
    client, _, auth = fake
    request = SCHEMAS["schemas_version_prediction_request"]
    body = {"version": VERSION, "input": {"image": data_uri(make_room_photo(64, 48)), "prompt": "x"},
            "webhook": "https://example.com/hook", "webhook_events_filter": ["start", "completed"],
            "stream": False}
    assert problems(body, request, "request") == []
    assert set(request["properties"]) == set(body)
    assert request["properties"]["webhook_events_filter"]["items"]["enum"] == ["start", "output", "logs", "completed"]
    # An unknown field is refused with the documented invalid_fields.
    typo = client.post("/v1/predictions", headers=auth, json={"version": VERSION, "inptu": {}})
    assert typo.status_code == 422
    assert typo.json()["invalid_fields"] == REFERENCE["invalid_fields_example"]


def test_models_versions_files_and_the_secret_match_their_schemas(fake, room_jpeg):
    client, _, auth = fake
    model = client.get("/v1/models/adirik/interior-design", headers=auth)
    assert documented("/models/{model_owner}/{model_name}", "get", model.status_code)
    assert problems(model.json(), SCHEMAS["schemas_model_response"], "model") == []
    assert problems(model.json()["latest_version"], SCHEMAS["schemas_version_response"], "version") == []
    versions = client.get("/v1/models/adirik/interior-design/versions", headers=auth)
    assert documented("/models/{model_owner}/{model_name}/versions", "get", versions.status_code)
    assert problems(versions.json(), SCHEMAS["schemas_paginated_version_response"], "versions") == []
    version = client.get(f"/v1/models/adirik/interior-design/versions/{VERSION}", headers=auth)
    assert problems(version.json(), SCHEMAS["schemas_version_response"], "version") == []

    uploaded = client.post("/v1/files", headers=auth, files={"content": ("room.jpg", room_jpeg, "image/jpeg")})
    assert documented("/files", "post", uploaded.status_code)
    assert problems(uploaded.json(), SCHEMAS["schemas_file_response"], "file") == []
    files = client.get("/v1/files", headers=auth)
    assert problems(files.json(), response_schema("/files", "get", 200), "files") == []
    missing = client.get("/v1/files/nope", headers=auth)
    assert documented("/files/{file_id}", "get", missing.status_code)
    assert missing.headers["content-type"] == "application/problem+json"
    error_schema = response_schema("/files/{file_id}", "get", 404, "application/problem+json")
    assert isinstance(missing.json()["detail"], str) and set(error_schema["properties"]) <= set(missing.json())
    deleted = client.delete(f"/v1/files/{uploaded.json()['id']}", headers=auth)
    assert documented("/files/{file_id}", "delete", deleted.status_code)

    secret = client.get("/v1/webhooks/default/secret", headers=auth)
    secret_schema = response_schema("/webhooks/default/secret", "get", 200)
    assert problems(secret.json(), secret_schema, "secret") == [] and set(secret.json()) == {"key"}


def test_the_prefer_header_follows_its_documented_pattern():
    pattern = re.compile(REFERENCE["components"]["parameters"]["parameters_prefer_header"]["schema"]["pattern"])

    class Headers:
        def __init__(self, value: str) -> None:
            self.headers = {"prefer": value}

    for value, seconds in [("wait", 60), ("wait=1", 1), ("wait=5", 5), ("wait=60", 60), ("wait=99", 60)]:
        assert pattern.fullmatch(value)
        assert wait_seconds(Headers(value)) == seconds  # type: ignore[arg-type]
    assert wait_seconds(Headers("respond-async")) is None  # type: ignore[arg-type]


def test_the_checker_itself_finds_departures():
    prediction = json.loads(REFERENCE["examples"]["predictions.get"])
    assert problems(prediction, SCHEMAS["schemas_prediction_response"], "prediction") == []
    broken = {**prediction, "status": "queued", "created_at": "yesterday", "extra": 1}
    del broken["data_removed"]
    assert sorted(problems(broken, SCHEMAS["schemas_prediction_response"], "prediction")) == [
        "prediction.created_at: 'yesterday' is not a date-time",
        "prediction.data_removed: required, missing",
        "prediction.extra: not in the description",
        "prediction.status: 'queued' is not one of ['starting', 'processing', 'succeeded', "
        "'failed', 'canceled', 'aborted']",
    ]
