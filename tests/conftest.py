"""Shared fixtures: a real app on a temporary data folder, a key, sample photos, a worker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.samples import room_photo
from roomrender.services import Services, build_services
from tests.databases import fresh_schema, is_postgresql, isolated_database

BASE_URL = "http://testserver"


def make_room_photo(width: int = 320, height: int = 240, fmt: str = "JPEG") -> bytes:
    """A synthetic room: ceiling, walls, a window, a floor and a sofa, with hard edges."""
    return room_photo(width, height, fmt)


@pytest.fixture
def room_jpeg() -> bytes:
    return make_room_photo()


@pytest.fixture
def database_url() -> Iterator[str]:
    """ROOMRENDER_TEST_DATABASE_URL runs the suite on PostgreSQL, each test in a fresh schema."""
    with isolated_database() as url:
        yield url


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, on the backend the suite runs on."""
    url = os.environ.get("ROOMRENDER_TEST_DATABASE_URL", "")
    if is_postgresql(url):
        with fresh_schema(url, migrate=False) as isolated:
            yield isolated
    else:
        yield f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a random local port, one for the whole run."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the AWS settings point boto3 at the local server, as a deployment would."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"rr-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Test settings on a temporary folder and an empty, migrated database."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        public_base_url=BASE_URL,
        heartbeat_seconds=0.2,
        worker_poll_seconds=0.02,
        lease_seconds=5,
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.db.dispose()


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services.settings, services=services, workers=0, janitor=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def api_key(services: Services) -> str:
    return services.keys.create("test")[1]


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def drain(services: Services, limit: int = 100) -> int:
    """Run the worker in this thread until the queue is empty; the number of batches run."""
    worker = services.new_worker()
    batches = 0
    while batches < limit and worker.run_once():
        batches += 1
    return batches


def data_uri(data: bytes, content_type: str = "image/jpeg") -> str:
    import base64

    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The engine tests under tests/engines/ need torch and diffusers: marked `torch`, so that
    `make test-fast` (no torch install) leaves them out."""
    for item in items:
        if "engines" in item.path.parts:
            item.add_marker(pytest.mark.torch)
