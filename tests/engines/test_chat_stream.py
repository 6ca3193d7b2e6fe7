"""A chat answer streamed as it forms: a native SSE client of a chat job hears `token` events
(the tiny random Qwen2 chat model run by the real worker), which add up to the stored answer,
then the end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from fastapi.testclient import TestClient

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.engines import load_engine
from roomrender.services import Services, build_services
from tests.conftest import BASE_URL
from tests.event_streams import Stream


@pytest.fixture
def chat_services(settings: Settings, tmp_path_factory: pytest.TempPathFactory,
                  registry_file: Path) -> Iterator[Services]:
    from roomrender.engines.diffusers.random_models import build_models_dir

    models = build_models_dir(tmp_path_factory.mktemp("chat-models"), only={"assistant"})
    configured = settings.model_copy(update={"engine": "diffusers", "models_dir": models,
                                             "diffusers_registry": registry_file})
    built = build_services(configured, engine=load_engine(configured))
    yield built
    built.db.dispose()


@pytest.mark.slow
def test_a_native_stream_of_a_chat_job_hears_its_answer_token_by_token(
        chat_services: Services) -> None:
    # No worker in the app: the stream is open before the job runs, so it hears every piece.
    app = create_app(chat_services.settings, services=chat_services, workers=0, janitor=False,
                     webhooks=False)
    _, secret = chat_services.keys.create("designer", credits=10)
    auth = {"Authorization": f"Bearer {secret}"}
    with TestClient(app, base_url=BASE_URL) as client:
        submitted = client.post("/v1/jobs", headers=auth, json={
            "task": "chat", "prompt": "Which colour suits a small north-facing bedroom?"})
        assert submitted.status_code in (200, 201, 202), submitted.text
        job_id = submitted.json()["id"]
        with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=auth) as response:
            stream = Stream(response)
            assert stream.next()[0] == "status"  # queued: the watch is on
            worker = chat_services.new_worker()
            running = threading.Thread(target=worker.run_once)
            running.start()
            events = stream.until_end()
            running.join(60)

        job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
        assert job["status"] == "succeeded"
        answer = client.get(job["outputs"][0]["url"]).text

    tokens = [data for name, data in events if name == "token"]
    assert answer and tokens
    assert {token["id"] for token in tokens} == {job_id}
    # Each piece starts where the one before ended; together they are the stored answer.
    offsets = [sum(len(token["text"]) for token in tokens[:index]) for index in range(len(tokens))]
    assert [token["at"] for token in tokens] == offsets
    assert "".join(token["text"] for token in tokens) == answer
    # The pieces came before the end, after the job began running.
    names = [name for name, _ in events]
    assert names[-1] == "end" and events[-1][1]["status"] == "succeeded"
    assert names.index("token") < names.index("end")
