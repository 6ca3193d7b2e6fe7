"""chat and enhance_prompt without a language model: the preview engine's clear refusal, the
charge by length, the deterministic expansion of a prompt from the catalog's vocabulary, and
chat listed wherever tasks are."""

from __future__ import annotations

from fastapi.testclient import TestClient

from roomrender.canonical.models import ChatTurn, GenerationRequest, Task
from roomrender.canonical.tasks import TASKS, cost_of
from roomrender.engines.enhancing import QUALITY_WORDS, enhanced, expanded_prompt


def test_the_preview_engine_answers_chat_needs_a_language_model(client: TestClient,
                                                                auth: dict[str, str]) -> None:
    luw = client.post("/v2/generate", headers=auth, json={"model": "archigpt", "prompt": "Rug size?"})
    assert luw.status_code == 400, luw.text
    assert luw.json()["status"] is False
    assert "needs a language model" in luw.json()["error"]
    native = client.post("/v1/jobs", headers=auth, json={"task": "chat", "prompt": "Rug size?"})
    assert native.status_code in (400, 422), native.text
    assert "needs a language model" in native.text
    assert client.get("/v2/credits", headers=auth).json()["credits"]["used"] == 0


def test_chat_costs_a_credit_per_started_3000_words_read() -> None:
    short = GenerationRequest(task=Task.chat, prompt="Which rug for a 3 by 4 metre living room?")
    assert cost_of(short) == 1
    turns = [ChatTurn(prompt="go on " * 100, answer="word " * 1300) for _ in range(3)]  # 4,500 words
    assert cost_of(short.model_copy(update={"history": turns})) == 2
    listed = TASKS[Task.chat].cost.as_dict()
    assert (listed["credits"], listed["words"]) == (1, 3000)


def test_enhance_prompt_expands_deterministically_from_the_catalog() -> None:
    asked = GenerationRequest(task=Task.text_to_image, prompt="a cosy scandinavian bedroom",
                              enhance_prompt=True)
    expansion = expanded_prompt(asked)
    assert expansion == expanded_prompt(asked)
    assert expansion.startswith("a cosy scandinavian bedroom, scandinavian style (light woods, whites, soft textiles)")
    # The room is named in the prompt already: not said twice; the quality words follow.
    assert expansion.count("bedroom") == 1
    assert expansion.endswith(", ".join(QUALITY_WORDS))
    # The request's own style and room type win over words of the prompt.
    styled = asked.model_copy(update={"prompt": "a reading corner", "style": "industrial", "room_type": "home_office"})
    assert "industrial style (raw materials, dark metal, concrete)" in expanded_prompt(styled)
    assert expanded_prompt(styled).count("home office") == 1
    # Applied once, then off; not at all unless asked.
    done = enhanced(asked)
    assert (done.prompt, done.enhance_prompt) == (expansion, False)
    assert enhanced(asked.model_copy(update={"enhance_prompt": False})).prompt == "a cosy scandinavian bedroom"
    # A rewriting model's answer is used when it gives one, the expansion when it gives nothing.
    rewritten = enhanced(asked, lambda prompt: "  a calm Nordic bedroom,\n oak floor ")
    assert rewritten.prompt == "a calm Nordic bedroom, oak floor"
    assert enhanced(asked, lambda prompt: "   ").prompt == expansion


def test_chat_is_listed_with_its_cost_and_as_a_replicate_model(client: TestClient,
                                                               auth: dict[str, str]) -> None:
    tasks = client.get("/v1/tasks", headers=auth).json()
    chat = next(entry for entry in (tasks["tasks"] if isinstance(tasks, dict) else tasks)
                if entry.get("task", entry.get("name")) == "chat")
    assert chat["output_kind"] == "text"
    model = client.get("/v1/models/roomrender/chat", headers=auth)
    assert model.status_code == 200, model.text
