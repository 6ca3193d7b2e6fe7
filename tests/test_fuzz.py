"""Schemathesis over the whole OpenAPI schema (native /v1, Spacely /api/v1, Luw /v2, files,
operations): a few thousand generated requests, valid and not, with a real key; no answer is a
5xx, and every status is one the route documents. `bench/fuzz.py` runs the same for longer."""

from __future__ import annotations

import atexit
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
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, status_code_conformance

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.services import build_services
from tests.databases import isolated_database

# bench/fuzz.py raises it for a longer run, and reads the statuses seen in the report file.
EXAMPLES_PER_OPERATION = int(os.environ.get("ROOMRENDER_FUZZ_EXAMPLES", "160"))
REPORT = os.environ.get("ROOMRENDER_FUZZ_REPORT")
STATUSES: Counter[int] = Counter()


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
    if REPORT:
        Path(REPORT).write_text(json.dumps({str(k): v for k, v in sorted(STATUSES.items())}))


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {KEY}", "X-API-KEY": KEY}
    response = case.call_and_validate(headers=headers,
                                      checks=[not_a_server_error, status_code_conformance])
    STATUSES[response.status_code] += 1
