"""The engine (`warm_up` is part of the Engine protocol) is warmed up before the in-process workers start (serve)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from roomrender.app import create_app
from roomrender.services import Services


def test_the_engine_is_warmed_up_before_the_workers_start(services: Services, monkeypatch: Any) -> None:
    calls: list[str] = []
    monkeypatch.setattr(services.engine, "warm_up", lambda: calls.append("warm_up"))
    real_new_worker = services.new_worker

    def new_worker(**kwargs: Any) -> Any:
        calls.append("worker")
        return real_new_worker(**kwargs)

    monkeypatch.setattr(services, "new_worker", new_worker)
    with TestClient(create_app(services.settings, services=services, workers=1, janitor=False, webhooks=False)):
        pass
    assert calls == ["warm_up", "worker"]


def test_no_warm_up_without_in_process_workers(services: Services, monkeypatch: Any) -> None:
    calls: list[str] = []
    monkeypatch.setattr(services.engine, "warm_up", lambda: calls.append("warm_up"))
    with TestClient(create_app(services.settings, services=services, workers=0, janitor=False, webhooks=False)):
        pass
    assert calls == []
