"""Webhooks end to end: a real receiver on 127.0.0.1 verifies every call with `standardwebhooks`."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from standardwebhooks.webhooks import WebhookVerificationError

from roomrender.app import create_app
from roomrender.canonical.models import GenerationRequest
from roomrender.config import Settings
from roomrender.db.tables import webhook_attempts, webhook_messages
from roomrender.services import Services, build_services
from roomrender.webhooks.delivery import Dispatcher, retry_after_seconds
from tests.conftest import data_uri, drain
from tests.netfakes import FakeNetwork
from tests.webhook_receiver import Receiver

FAST = [0, 0.05, 0.05, 0.05, 0.05]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"allow_private_urls": True, "webhook_retry_schedule": FAST,
                                       "webhook_timeout_seconds": 2.0})


@pytest.fixture(autouse=True)
def empty_outbox(services: Services) -> None:
    """On a shared database (ROOMRENDER_TEST_DATABASE_URL) start each test with no messages."""
    with services.db.begin() as connection:
        connection.execute(delete(webhook_attempts))
        connection.execute(delete(webhook_messages))


@pytest.fixture
def app(services: Services) -> FastAPI:
    # Tests drive the dispatcher themselves, one round at a time.
    return create_app(services.settings, services=services, workers=0, janitor=False, webhooks=False)


@pytest.fixture
def dispatcher(services: Services) -> Iterator[Dispatcher]:
    built = services.new_dispatcher()
    yield built
    built.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def secret(client, auth) -> str:
    return client.get("/v1/webhooks/secret", headers=auth).json()["secret"]


def submit(client, auth, room_jpeg: bytes, webhook: str, **extra) -> str:
    created = client.post("/v1/jobs", headers=auth, json={
        "task": "restyle", "image": data_uri(room_jpeg), "style": "modern", "webhook": webhook,
        **extra})
    assert created.status_code == 202, created.text
    return created.json()["id"]


def deliver_until_settled(dispatcher: Dispatcher, services: Services, rounds: int = 50) -> None:
    """Run dispatcher rounds until no message is pending."""
    for _ in range(rounds):
        dispatcher.run_once()
        with services.db.connect() as connection:
            pending = connection.execute(select(webhook_messages.c.id).where(
                webhook_messages.c.status == "pending")).first()
        if pending is None:
            return
        time.sleep(0.03)
    raise AssertionError("messages still pending")


def test_finished_job_calls_its_webhook_signed(client, auth, services, dispatcher, receiver,
                                               secret, room_jpeg):
    job_id = submit(client, auth, room_jpeg, receiver.url())
    drain(services)
    assert dispatcher.run_once() == 1

    [call] = receiver.calls
    assert call.path == "/hook" and call.id.startswith("msg_")
    assert secret.startswith("whsec_")
    event = call.verify(secret)
    assert event["type"] == "job.succeeded"
    polled = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
    assert event["data"] == polled
    assert event["data"]["outputs"][0]["url"].startswith("http://testserver/files/")
    with pytest.raises(WebhookVerificationError):
        call.verify("whsec_" + "A" * 43 + "=")

    history = client.get(f"/v1/jobs/{job_id}/webhooks", headers=auth).json()["data"]
    assert [(m["id"], m["event"], m["status"]) for m in history] == [
        (call.id, "job.succeeded", "delivered")]
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in history[0]["attempts"]] == [
        (1, 200, "delivered")]


def test_event_filter_sends_the_events_asked_for(client, auth, services, dispatcher, receiver,
                                                 secret, room_jpeg):
    submit(client, auth, room_jpeg, receiver.url(),
           webhook_events=["job.started", "job.succeeded"])
    quiet = submit(client, auth, room_jpeg, receiver.url("/quiet"), webhook_events=[])
    drain(services)
    deliver_until_settled(dispatcher, services)
    types_ = sorted(call.verify(secret)["type"] for call in receiver.calls)
    assert types_ == ["job.started", "job.succeeded"]
    assert all(call.path == "/hook" for call in receiver.calls)
    assert client.get(f"/v1/jobs/{quiet}/webhooks", headers=auth).json() == {"data": []}


def test_canceled_job_sends_job_canceled_by_default(client, auth, services, dispatcher, receiver,
                                                    secret, room_jpeg):
    job_id = submit(client, auth, room_jpeg, receiver.url())
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code == 200
    dispatcher.run_once()
    [call] = receiver.calls
    assert call.verify(secret)["type"] == "job.canceled"
    assert call.verify(secret)["data"]["error"]["code"] == "canceled"


def test_progress_events_are_throttled_to_one_per_second(client, auth, services, room_jpeg):
    job_id = submit(client, auth, room_jpeg, "http://127.0.0.1:9/hook",
                    webhook_events=["job.progress"])
    claim = services.queue.claim("test-worker", services.engine.name)
    assert claim is not None
    for step in range(5):
        services.queue.set_progress(claim.token, {job_id: step / 10})
    time.sleep(1.05)
    services.queue.set_progress(claim.token, {job_id: 0.9})
    history = client.get(f"/v1/jobs/{job_id}/webhooks", headers=auth).json()["data"]
    assert [m["event"] for m in history] == ["job.progress", "job.progress"]


def test_500_twice_then_200_is_retried_with_the_same_id(client, auth, services, dispatcher,
                                                         secret, room_jpeg):
    with Receiver([500, 503]) as flaky:
        job_id = submit(client, auth, room_jpeg, flaky.url())
        drain(services)
        deliver_until_settled(dispatcher, services)
    assert len(flaky.calls) == 3
    assert len({call.id for call in flaky.calls}) == 1
    assert len({call.body for call in flaky.calls}) == 1
    for call in flaky.calls:
        assert call.verify(secret)["type"] == "job.succeeded"
    [message] = client.get(f"/v1/jobs/{job_id}/webhooks", headers=auth).json()["data"]
    assert message["status"] == "delivered" and message["id"] == flaky.calls[0].id
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in message["attempts"]] == [
        (1, 500, "retry"), (2, 503, "retry"), (3, 200, "delivered")]
    assert message["attempts"][0]["error"].startswith("HTTP 500")


def test_other_4xx_and_redirects_are_not_retried(client, auth, services, dispatcher, room_jpeg):
    with Receiver([400, (302, {"Location": "/elsewhere"}, 0.0)]) as refusing:
        first = submit(client, auth, room_jpeg, refusing.url("/one"))
        drain(services)
        deliver_until_settled(dispatcher, services)
        second = submit(client, auth, room_jpeg, refusing.url("/two"))
        drain(services)
        deliver_until_settled(dispatcher, services)
    assert [call.path for call in refusing.calls] == ["/one", "/two"]
    for job_id, code, words in ((first, 400, "HTTP 400"), (second, 302, "not followed")):
        [message] = client.get(f"/v1/jobs/{job_id}/webhooks", headers=auth).json()["data"]
        assert message["status"] == "failed"
        [attempt] = message["attempts"]
        assert attempt["status_code"] == code and words in attempt["error"]


def test_gives_up_after_the_last_scheduled_attempt(client, auth, services, room_jpeg):
    dispatcher = services.new_dispatcher(schedule=[0, 0.02, 0.02])
    try:
        with Receiver(default=500) as broken:
            job_id = submit(client, auth, room_jpeg, broken.url())
            drain(services)
            deliver_until_settled(dispatcher, services)
    finally:
        dispatcher.close()
    assert len(broken.calls) == 3
    [message] = client.get(f"/v1/jobs/{job_id}/webhooks", headers=auth).json()["data"]
    assert message["status"] == "failed" and "gave up after 3 attempts" in message["last_error"]


def test_retry_after_delays_the_next_attempt(client, auth, services, dispatcher, room_jpeg):
    with Receiver([(429, {"Retry-After": "2"}, 0.0)]) as busy:
        submit(client, auth, room_jpeg, busy.url())
        drain(services)
        before = time.time()
        assert dispatcher.run_once() == 1
        assert dispatcher.run_once() == 0  # the schedule says 0.05 s, the receiver 2 s
        with services.db.connect() as connection:
            due = connection.execute(select(webhook_messages.c.next_attempt_at)).scalar_one()
    assert due - before >= 1.9
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("garbage") is None


def test_a_slow_receiver_times_out_and_is_retried(client, auth, services, room_jpeg):
    dispatcher = services.new_dispatcher(timeout=0.2)
    try:
        with Receiver([(200, {}, 1.0)]) as slow:
            job_id = submit(client, auth, room_jpeg, slow.url())
            drain(services)
            deliver_until_settled(dispatcher, services)
    finally:
        dispatcher.close()
    [message] = client.get(f"/v1/jobs/{job_id}/webhooks", headers=auth).json()["data"]
    assert [a["outcome"] for a in message["attempts"]] == ["retry", "delivered"]
    assert "timed out" in message["attempts"][0]["error"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_restart_between_attempts_still_delivers(settings, room_jpeg):
    """The receiver is down, the server restarts, the receiver comes back: delivered once."""
    port = _free_port()
    first = build_services(settings)
    owner, _ = first.keys.create("restart")
    job = first.jobs.submit(owner, GenerationRequest(
        task="restyle", image=data_uri(room_jpeg), style="modern",
        webhook=f"http://127.0.0.1:{port}/hook"))
    drain(first)
    dispatcher = first.new_dispatcher()
    assert dispatcher.run_once() == 1  # connection refused: retried later
    dispatcher.close()
    first.db.dispose()

    second = build_services(settings)  # a new process on the same database
    secret = second.webhook_secrets.get(owner.id).current
    time.sleep(0.06)
    with Receiver(port=port) as back:
        dispatcher = second.new_dispatcher()
        deliver_until_settled(dispatcher, second)
        dispatcher.close()
    [call] = back.calls
    assert call.verify(secret)["data"]["id"] == job.id
    with second.db.connect() as connection:
        message = connection.execute(select(webhook_messages)).one()
    assert (message.id, message.status, message.attempts) == (call.id, "delivered", 2)
    second.db.dispose()


def test_a_dispatcher_that_dies_mid_attempt_is_covered_by_its_lease(client, auth, services,
                                                                      receiver, secret, room_jpeg):
    submit(client, auth, room_jpeg, receiver.url())
    drain(services)
    crashed = services.new_dispatcher(lease_seconds=0.3)
    [claimed] = crashed.claim(10)  # claimed, then never recorded
    other = services.new_dispatcher(lease_seconds=0.3)
    try:
        assert other.run_once() == 0
        time.sleep(0.35)
        assert other.run_once() == 1
    finally:
        crashed.close()
        other.close()
    [call] = receiver.calls
    assert call.id == claimed.id and call.verify(secret)["type"] == "job.succeeded"


def test_two_dispatchers_deliver_each_event_once(client, auth, services, receiver, room_jpeg):
    job_ids = [submit(client, auth, room_jpeg, receiver.url()) for _ in range(12)]
    drain(services)
    stop = threading.Event()
    dispatchers = [services.new_dispatcher(concurrency=4) for _ in range(2)]
    threads = [threading.Thread(target=d.run, args=(stop,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    deadline = time.time() + 10
    while len(receiver.calls) < len(job_ids) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    stop.set()
    for thread, dispatcher in zip(threads, dispatchers, strict=True):
        thread.join()
        dispatcher.close()
    counts = Counter(call.id for call in receiver.calls)
    assert len(counts) == len(job_ids) and set(counts.values()) == {1}


def test_private_webhook_urls_are_refused_with_the_setting_off(client, auth, services, room_jpeg):
    services.settings.allow_private_urls = False
    for url in ("http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data",
                "http://10.0.0.7/hook", "http://[::1]/hook", "ftp://example.org/hook"):
        answer = client.post("/v1/jobs", headers=auth, json={
            "task": "restyle", "image": data_uri(room_jpeg), "style": "modern", "webhook": url})
        assert answer.status_code == 400, url
        assert answer.json()["error"]["code"] == "url_refused"
        assert "webhook" in answer.json()["error"]["message"]


def test_private_urls_are_refused_at_delivery_time_too(client, auth, services, receiver, room_jpeg):
    job_id = submit(client, auth, room_jpeg, receiver.url())  # accepted while allowed
    drain(services)
    strict = services.new_dispatcher(allow_private=False)
    try:
        assert strict.run_once() == 1
    finally:
        strict.close()
    assert receiver.calls == []
    [message] = client.get(f"/v1/jobs/{job_id}/webhooks", headers=auth).json()["data"]
    assert message["status"] == "failed" and "refused" in message["attempts"][0]["error"]


def test_rotation_signs_with_both_secrets_during_the_overlap(client, auth, services, dispatcher,
                                                             receiver, room_jpeg):
    old = client.get("/v1/webhooks/secret", headers=auth).json()["secret"]
    rotated = client.post("/v1/webhooks/secret/rotate", headers=auth).json()
    new = rotated["secret"]
    assert new != old and rotated["previous_secret_expires_at"] is not None
    assert client.get("/v1/webhooks/secret", headers=auth).json()["secret"] == new
    submit(client, auth, room_jpeg, receiver.url())
    drain(services)
    dispatcher.run_once()
    [call] = receiver.calls
    assert len(call.headers["webhook-signature"].split(" ")) == 2
    assert call.verify(old) == call.verify(new)

    newest = client.post("/v1/webhooks/secret/rotate?overlap_seconds=0", headers=auth).json()
    assert newest["previous_secret_expires_at"] is None
    submit(client, auth, room_jpeg, receiver.url())
    drain(services)
    dispatcher.run_once()
    last = receiver.calls[-1]
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    last.verify(newest["secret"])
    with pytest.raises(WebhookVerificationError):
        last.verify(new)


def test_secrets_belong_to_their_key(client, auth, services, receiver, room_jpeg):
    other = {"Authorization": f"Bearer {services.keys.create('other')[1]}"}
    mine = client.get("/v1/webhooks/secret", headers=auth).json()["secret"]
    theirs = client.get("/v1/webhooks/secret", headers=other).json()["secret"]
    assert mine != theirs
    job_id = submit(client, auth, room_jpeg, receiver.url())
    answer = client.get(f"/v1/jobs/{job_id}/webhooks", headers=other)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert client.get("/v1/webhooks/secret").status_code == 401


def _dialect_job(services: Services, room_jpeg: bytes, url: str, dialect: str = "luw") -> str:
    owner = services.keys.create(dialect)[0]
    job = services.jobs.submit(owner, GenerationRequest(
        task="restyle", image=data_uri(room_jpeg), style="modern", webhook=url), dialect=dialect)
    drain(services)
    return job.id


def test_a_registered_dialect_body_goes_to_the_url_as_given(services, dispatcher, receiver,
                                                            room_jpeg):
    services.webhook_bodies.register(
        "acme", lambda _event, job: json.dumps({"status": True, "output": job.outputs[0].url}),
        events={"job.succeeded"})
    url = receiver.url("/luw/callback?order=42&user=a%2Fb&tag=x%20y")
    _dialect_job(services, room_jpeg, url, dialect="acme")
    dispatcher.run_once()
    [call] = receiver.calls
    assert call.path == "/luw/callback?order=42&user=a%2Fb&tag=x%20y"
    body = call.verify(services.webhook_secrets.get(
        services.keys.list()[-1].id).current)
    assert body["status"] is True and body["output"].startswith("http://testserver/files/")


def test_dialect_without_a_registered_body_gets_the_native_body(services, dispatcher, receiver,
                                                                 room_jpeg):
    job_id = _dialect_job(services, room_jpeg, receiver.url(), dialect="acme")
    dispatcher.run_once()
    [call] = receiver.calls
    body = call.verify(services.webhook_secrets.get(services.keys.list()[-1].id).current)
    assert body["type"] == "job.succeeded" and body["data"]["id"] == job_id


def test_luw_webhook_body_matches_v2_results(client, services, dispatcher, receiver, room_jpeg):
    owner, plaintext = services.keys.create("luw-client")
    job = services.jobs.submit(owner, GenerationRequest(
        task="restyle", image=data_uri(room_jpeg), style="modern",
        webhook=receiver.url("/cb?id=7")), dialect="luw")
    drain(services)
    dispatcher.run_once()
    [call] = receiver.calls
    polled = client.get("/v2/results", params={"processing_url": job.id},
                        headers={"Authorization": f"Bearer {plaintext}"})
    assert polled.status_code == 200
    assert call.body == polled.content


def test_delivery_connects_to_the_address_it_checked(client, auth, services, secret, room_jpeg,
                                                     monkeypatch):
    """DNS rebinding: the name answers a public address, then the loopback, where an internal
    service listens on the URL's port. The delivery goes to the public address it checked, with
    the name as Host, and the internal service hears nothing."""
    network = FakeNetwork(monkeypatch)
    with Receiver() as public, Receiver() as internal:
        network.resolve("hooks.example.test", ["93.184.215.14"], ["127.0.0.1"])
        network.route("93.184.215.14", public.port)
        name = f"hooks.example.test:{internal.port}"
        job_id = submit(client, auth, room_jpeg, f"http://{name}/hook?x=1")
        drain(services)
        strict = services.new_dispatcher(allow_private=False)
        try:
            assert strict.run_once() == 1
        finally:
            strict.close()
    assert internal.calls == []
    [call] = public.calls
    assert call.headers["host"] == name and call.path == "/hook?x=1"
    assert call.verify(secret)["data"]["id"] == job_id


@pytest.mark.parametrize("url", ["http://hooks.test/a\tb", "http://hooks.test/\n", "http://[::1/x",
                                 "http://" + "a" * 70 + ".test/", "http://a..b/"])
def test_webhook_urls_that_cannot_be_delivered_are_refused_at_submit(client, auth, room_jpeg, url):
    native = client.post("/v1/jobs", headers=auth, json={
        "task": "restyle", "image": data_uri(room_jpeg), "style": "modern", "webhook": url})
    assert native.status_code == 400 and native.json()["error"]["code"] == "url_refused"
    spacely = client.post("/api/v1/generate/empty-room", headers={"X-API-KEY": auth["Authorization"][7:]},
                          json={"imageUrl": data_uri(room_jpeg), "webhookUrl": url})
    assert spacely.status_code == 400 and spacely.json()["error"]["code"] == "url_refused"
    luw = client.post("/v2/generate", headers=auth, json={
        "model": "interior", "image": data_uri(room_jpeg), "styles": "Modern", "webhook": url})
    assert luw.status_code == 400 and luw.json()["status"] is False


def test_one_undeliverable_row_fails_alone_and_the_dispatcher_goes_on(client, auth, services,
                                                                     receiver, room_jpeg):
    """A row no check would let in today (written straight into the outbox, as an older server
    did) fails its delivery; the dispatcher's thread lives on and delivers the others."""
    job_id = submit(client, auth, room_jpeg, receiver.url())
    drain(services)
    with services.db.begin() as connection:
        owner = connection.execute(select(webhook_messages.c.owner_id)).scalar_one()
        for index, url in enumerate(["http://hooks.test/a\tb", "http://[::1/x", "http://\ud800/",
                                     "http://" + "a" * 70 + ".test/"]):
            connection.execute(webhook_messages.insert().values(
                id=f"msg_bad{index}", job_id=job_id, owner_id=owner, event="job.succeeded",
                url=url.encode("utf-8", "replace").decode(), payload="{}", status="pending",
                attempts=0, next_attempt_at=0.0, created_at=0.0, updated_at=0.0))
    dispatcher = services.new_dispatcher(schedule=[0])
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with services.db.connect() as connection:
                statuses = dict(connection.execute(
                    select(webhook_messages.c.id, webhook_messages.c.status)).all())
            if "pending" not in statuses.values():
                break
            time.sleep(0.05)
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(5)
        dispatcher.close()
    bad = {key: value for key, value in statuses.items() if key.startswith("msg_bad")}
    assert set(bad.values()) == {"failed"} and len(bad) == 4
    assert len(receiver.calls) == 1 and "delivered" in statuses.values()


def test_the_served_app_delivers_in_the_background(services, api_key, receiver, room_jpeg):
    """As `roomrender serve` runs it: a worker and the dispatcher in the API process."""
    served = create_app(services.settings, services=services, workers=1, janitor=False)
    auth = {"Authorization": f"Bearer {api_key}"}
    with TestClient(served, base_url="http://testserver") as client:
        secret = client.get("/v1/webhooks/secret", headers=auth).json()["secret"]
        job_id = submit(client, auth, room_jpeg, receiver.url())
        deadline = time.time() + 20
        while not receiver.calls and time.time() < deadline:
            time.sleep(0.05)
        assert receiver.calls[0].verify(secret)["data"]["id"] == job_id
        assert "job-event" in client.get("/openapi.json").json()["webhooks"]


def test_settled_messages_are_pruned_after_the_retention(client, auth, services, dispatcher,
                                                         receiver, room_jpeg):
    job_id = submit(client, auth, room_jpeg, receiver.url())
    pending = submit(client, auth, room_jpeg, "http://127.0.0.1:9/never-tried")
    client.post(f"/v1/jobs/{pending}/cancel", headers=auth)
    drain(services)
    with services.db.begin() as connection:  # the second one stays pending: not yet due
        connection.execute(update(webhook_messages).where(webhook_messages.c.job_id == pending)
                           .values(next_attempt_at=time.time() + 3600))
    dispatcher.run_once()
    assert services.outbox.prune(3600) == 0
    assert services.outbox.prune(3600, now=time.time() + 7200) == 1
    assert client.get(f"/v1/jobs/{job_id}/webhooks", headers=auth).json() == {"data": []}
    assert len(client.get(f"/v1/jobs/{pending}/webhooks", headers=auth).json()["data"]) == 1


def test_spacely_webhook_body_matches_poll_result(client, services, dispatcher, receiver, room_jpeg):
    owner, plaintext = services.keys.create("spacely-client")
    job = services.jobs.submit(owner, GenerationRequest(
        task="restyle", image=data_uri(room_jpeg), style="modern", n=2,
        webhook=receiver.url("/spacely"), webhook_events=["job.succeeded", "job.failed"]),
        dialect="spacely")
    drain(services)
    dispatcher.run_once()
    [call] = receiver.calls
    polled = client.get("/api/v1/generate/poll-result", params={"refId": job.id},
                        headers={"X-API-KEY": plaintext})
    assert polled.status_code == 200
    assert call.verify(services.webhook_secrets.get(owner.id).current) == polled.json()
    assert polled.json()["data"]["status"] == "success"
    assert len(polled.json()["data"]["result"]) == 2
