"""The engine (`warm_up` is part of the Engine protocol) is warmed up in the background before the
in-process workers start (serve): meanwhile the process is alive (/healthz 200) but not ready
(/readyz 503, saying what it warms). A standalone worker's probe port says the same."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from fastapi.testclient import TestClient

from roomrender.app import create_app
from roomrender.probes import serve_probes
from roomrender.services import Services
from roomrender.warmup import Warmup


def _until(check: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_alive_but_not_ready_while_a_slow_engine_warms_up(services: Services, monkeypatch: Any) -> None:
    warm = threading.Event()
    monkeypatch.setattr(services.engine, "warm_up", lambda: warm.wait(10))
    app = create_app(services.settings, services=services, workers=1, janitor=False, webhooks=False)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        warming = client.get("/readyz")
        assert warming.status_code == 503
        body = warming.json()
        assert body["code"] == "warming_up"
        assert body["reason"] == "warming up the preview engine"
        assert body["warm_up"]["state"] == "warming"
        assert [t.name for t in app.state.background.threads] == ["warm-up"]  # no worker yet
        warm.set()
        _until(lambda: client.get("/readyz").status_code == 200)
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").json() == {"status": "ready"}
        _until(lambda: "worker-0" in [t.name for t in app.state.background.threads])


def test_the_engine_is_warmed_up_before_the_workers_start(services: Services, monkeypatch: Any) -> None:
    calls: list[str] = []
    monkeypatch.setattr(services.engine, "warm_up", lambda: calls.append("warm_up"))
    real_new_worker = services.new_worker

    def new_worker(**kwargs: Any) -> Any:
        calls.append("worker")
        return real_new_worker(**kwargs)

    monkeypatch.setattr(services, "new_worker", new_worker)
    with TestClient(create_app(services.settings, services=services, workers=1, janitor=False,
                               webhooks=False)) as client:
        _until(lambda: client.get("/readyz").status_code == 200)
        _until(lambda: len(calls) == 2)
    assert calls == ["warm_up", "worker"]


def test_a_failed_warm_up_is_unhealthy_and_starts_no_worker(services: Services, monkeypatch: Any) -> None:
    def explode() -> None:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(services.engine, "warm_up", explode)
    app = create_app(services.settings, services=services, workers=1, janitor=False, webhooks=False)
    with TestClient(app) as client:
        _until(lambda: client.get("/healthz").status_code == 503)
        assert client.get("/healthz").json()["reason"] == (
            "warming up the preview engine failed: CUDA out of memory")
        assert client.get("/readyz").json()["code"] == "warm_up_failed"
        assert [t.name for t in app.state.background.threads] == ["warm-up"]


def test_no_warm_up_without_in_process_workers(services: Services, monkeypatch: Any) -> None:
    calls: list[str] = []
    monkeypatch.setattr(services.engine, "warm_up", lambda: calls.append("warm_up"))
    with TestClient(create_app(services.settings, services=services, workers=0, janitor=False,
                               webhooks=False)) as client:
        assert client.get("/readyz").status_code == 200
    assert calls == []


def test_a_standalone_workers_probe_port_reports_its_warm_up() -> None:
    warm = threading.Event()
    warmup = Warmup("diffusers", ["restyle", "sketch"])
    server = serve_probes(0, "127.0.0.1", warmup)
    base = f"http://127.0.0.1:{server.server_port}"
    warming = threading.Thread(target=warmup.run, args=(lambda: warm.wait(10),))
    try:
        warming.start()
        _until(lambda: warmup.report().state == "warming")
        assert httpx.get(f"{base}/healthz").status_code == 200
        not_ready = httpx.get(f"{base}/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["reason"] == "warming up the diffusers engine (restyle, sketch)"
        warm.set()
        warming.join(10)
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200 and ready.json()["warm_up"]["state"] == "ready"
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert "roomrender_batch_seconds" in httpx.get(f"{base}/metrics").text
    finally:
        server.shutdown()
        server.server_close()
