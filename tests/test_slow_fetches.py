"""One key sending image URLs that drip a byte at a time cannot stall the API: its fetches end at
the total deadline, past its share of fetch slots it is told to retry (429), and other clients'
polls stay fast throughout. On a real uvicorn server."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from roomrender.app import create_app
from tests.conftest import data_uri, make_room_photo
from tests.netfakes import Site, serve_site
from tests.servers import free_port, run_uvicorn


@pytest.mark.slow
def test_a_key_dripping_slow_urls_does_not_slow_other_clients_polls(services):
    services.settings.allow_private_urls = True
    services.settings.fetch_timeout_seconds = 3.0
    services.settings.fetch_per_key = 4
    services.jobs.fetch_slots.per_key = 4
    hostile = services.keys.create("hostile")[1]
    polite = services.keys.create("polite")[1]
    app = create_app(services.settings, services=services, workers=0, janitor=False,
                     webhooks=False)
    photo = make_room_photo(64, 48, fmt="PNG")
    site = Site({"/room.png": (200, {"Content-Type": "image/png"}, photo)}, drip=0.5)
    with serve_site(site) as dripping, run_uvicorn(app, free_port()) as base:
        with httpx.Client(base_url=base, timeout=60) as client:
            created = client.post("/v1/jobs", headers={"Authorization": f"Bearer {polite}"},
                                  json={"task": "restyle", "image": data_uri(photo)})
            assert created.status_code == 202, created.text
            job_url = f"/v1/jobs/{created.json()['id']}"

        answers: list[httpx.Response] = []
        lock = threading.Lock()

        def slow_submit() -> None:
            with httpx.Client(base_url=base, timeout=60) as own:
                answer = own.post("/v1/jobs", headers={"Authorization": f"Bearer {hostile}"},
                                  json={"task": "restyle",
                                        "image": f"http://127.0.0.1:{dripping.port}/room.png"})
            with lock:
                answers.append(answer)

        started = time.monotonic()
        threads = [threading.Thread(target=slow_submit) for _ in range(45)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        latencies = []
        with httpx.Client(base_url=base, timeout=60) as poller:
            # Longer than the key cache lasts (2 s): some polls look the key up again.
            # At least one poll, even when starting the flood took most of those 5 s.
            while not latencies or time.monotonic() - started < 5.0:
                before = time.monotonic()
                polled = poller.get(job_url, headers={"Authorization": f"Bearer {polite}"})
                latencies.append(time.monotonic() - before)
                assert polled.status_code == 200
                time.sleep(0.05)
        for thread in threads:
            thread.join(30)
        elapsed = time.monotonic() - started

    statuses = sorted(answer.status_code for answer in answers)
    assert len(answers) == 45
    limited = [answer for answer in answers if answer.status_code == 429]
    assert len(limited) >= 41, statuses
    assert all(answer.headers.get("retry-after") for answer in limited)
    assert {answer.json()["error"]["code"] for answer in limited} == {"too_many_fetches"}
    fetched = [answer for answer in answers if answer.status_code != 429]
    assert all(answer.status_code == 400 and answer.json()["error"]["code"] == "fetch_failed"
               for answer in fetched), statuses
    assert elapsed < 12, "the slow fetches were not cut at their total deadline"
    assert max(latencies) < 1.0, f"polls took up to {max(latencies):.2f} s"
