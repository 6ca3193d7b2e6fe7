"""The chat task (Luw's archigpt) on the diffusers engine with a tiny random Qwen2 chat model,
built offline and loaded by the code users run: a Luw client's synchronous answer, its charge,
and conversations that only their key can read or continue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

from fastapi.testclient import TestClient

from roomrender.app import create_app
from roomrender.canonical.models import JobStatus
from roomrender.config import Settings
from roomrender.engines import load_engine
from roomrender.services import Services, build_services
from tests.conftest import BASE_URL, data_uri, make_room_photo

GRANTED = 10


@pytest.fixture(scope="module")
def chat_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from roomrender.engines.diffusers.random_models import build_models_dir

    return build_models_dir(tmp_path_factory.mktemp("chat-models"), only={"assistant"})


@pytest.fixture
def chat_services(settings: Settings, chat_models: Path, registry_file: Path) -> Iterator[Services]:
    configured = settings.model_copy(update={"engine": "diffusers", "models_dir": chat_models,
                                             "diffusers_registry": registry_file,
                                             "luw_chat_timeout_seconds": 60.0})
    built = build_services(configured, engine=load_engine(configured))
    yield built
    built.db.dispose()


@pytest.fixture
def chat_client(chat_services: Services) -> Iterator[TestClient]:
    # A worker runs beside the API: the synchronous answer waits for it.
    app = create_app(chat_services.settings, services=chat_services, workers=1, janitor=False,
                     webhooks=False)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


def new_key(services: Services, name: str) -> dict[str, str]:
    _, secret = services.keys.create(name, credits=GRANTED)
    return {"Authorization": f"Bearer {secret}"}


def ask(client: TestClient, auth: dict[str, str], **fields: Any) -> Any:
    return client.post("/v2/generate", headers=auth, json={"model": "archigpt", **fields})


def test_archigpt_answers_synchronously_and_charges_by_length(chat_client: TestClient,
                                                             chat_services: Services) -> None:
    auth = new_key(chat_services, "designer")
    answered = ask(chat_client, auth, prompt="Which colour suits a small north-facing bedroom?",
                   image=data_uri(make_room_photo(64, 48)), lang="en")

    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["status"] is True and "processing_url" not in body
    assert isinstance(body["message"], str)
    # One credit per started 3,000 words read: a short question costs one.
    assert body["usage"]["credits"] == 1
    assert body["usage"]["input_words"] == 7
    assert body["left"] == GRANTED - 1
    assert chat_client.get("/v2/credits", headers=auth).json()["credits"]["used"] == 1
    # The answer is the job's stored text output, also served as a text file.
    result = chat_client.post("/v2/results", headers=auth, json={"processing_url": body["id"]}).json()
    served = chat_client.get(result["output"])
    assert served.headers["content-type"].startswith("text/plain")
    assert served.text == body["message"]


def test_a_conversation_is_continued_by_its_key_and_no_other(chat_client: TestClient,
                                                            chat_services: Services) -> None:
    owner, stranger = new_key(chat_services, "owner"), new_key(chat_services, "stranger")
    first = ask(chat_client, owner, prompt="I have a narrow hallway. How do I make it feel wider?").json()
    assert first["status"] is True

    # Another key can neither read the answer nor continue the conversation.
    peeked = chat_client.post("/v2/results", headers=stranger, json={"processing_url": first["id"]})
    assert peeked.status_code == 404 and peeked.json()["status"] is False
    hijacked = ask(chat_client, stranger, prompt="And what did you tell them?", conversation=first["id"])
    assert hijacked.status_code == 404, hijacked.text
    assert hijacked.json()["status"] is False
    assert "conversation" in hijacked.json()["error"]
    stranger_credits = chat_client.get("/v2/credits", headers=stranger).json()["credits"]
    assert stranger_credits["used"] == 0

    # Its owner continues it: the follow-up carries the first turn, question and answer.
    follow = ask(chat_client, owner, prompt="And the lighting?", conversation=first["id"])
    assert follow.status_code == 200, follow.text
    second = follow.json()
    assert second["status"] is True
    owner_key = next(key for key in chat_services.keys.list() if key.name == "owner")
    job = chat_services.jobs.get(owner_key, second["id"])
    assert job.status == JobStatus.succeeded
    [turn] = job.request.history
    assert turn.prompt == "I have a narrow hallway. How do I make it feel wider?"
    assert turn.answer == first["message"]
    # It read the earlier turn too.
    assert second["usage"]["input_words"] == 3 + 12 + len(first["message"].split())


def test_enhance_prompt_is_rewritten_by_the_language_model_when_present(chat_models: Path,
                                                                       registry_file: Path) -> None:
    from roomrender.canonical.models import GenerationRequest, Task
    from roomrender.engines.base import EngineJob
    from roomrender.engines.diffusers.engine import DiffusersEngine
    from roomrender.engines.diffusers.registry import load_registry
    from roomrender.engines.enhancing import expanded_prompt

    engine = DiffusersEngine(load_registry(registry_file), chat_models)
    asked = GenerationRequest(task=Task.text_to_image, prompt="a bright kitchen", enhance_prompt=True)
    plain = GenerationRequest(task=Task.text_to_image, prompt="a bright kitchen")
    jobs = [EngineJob("asked", asked), EngineJob("plain", plain)]
    engine.assistant.rewrite_prompts(jobs)

    rewritten = jobs[0].request
    assert rewritten.enhance_prompt is False and rewritten.prompt
    # The model's words (gibberish, from random weights), not the catalog's expansion.
    assert rewritten.prompt not in ("a bright kitchen", expanded_prompt(asked))
    assert jobs[1].request == plain
