"""Replicate's official Python client (`replicate` from PyPI), unchanged, against a live roomrender
(uvicorn on 127.0.0.1, one in-process worker, the webhook dispatcher): only `base_url` and the
token differ from an app that runs on Replicate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from roomrender.app import create_app
from roomrender.config import Settings
from roomrender.engines.base import BatchContext, EngineJob, JobResult
from roomrender.engines.preview.engine import PreviewEngine
from roomrender.services import build_services
from tests.conftest import make_room_photo
from tests.databases import isolated_database
from tests.servers import free_port, run_uvicorn, serve_files
from tests.webhook_receiver import Receiver

replicate = pytest.importorskip("replicate")
from replicate.exceptions import ModelError, ReplicateError  # noqa: E402
from replicate.stream import ServerSentEvent  # noqa: E402
from replicate.webhook import Webhooks  # noqa: E402

VERSION = "76604baddc85b1b4616e1c6475eca080da339c8875bd4996705440484a6eac38"
INTERIOR = f"adirik/interior-design:{VERSION}"
SLOW, FAIL = "[slow]", "[fail]"
SLOW_STEPS, SLOW_STEP_SECONDS = 40, 0.05


class ScriptedEngine(PreviewEngine):
    """The preview engine, but a prompt with [slow] runs in cancellable steps first and one with
    [fail] fails, as a model's own error would."""

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        results: list[JobResult] = []
        for job in batch:
            prompt = job.request.prompt or ""
            if FAIL in prompt:
                results.append(RuntimeError("CUDA error: the model ran out of ideas"))
                continue
            if SLOW in prompt:
                for step in range(SLOW_STEPS):
                    time.sleep(SLOW_STEP_SECONDS)
                    context.progress([job.job_id], (step + 1) / (SLOW_STEPS + 1))
            results.extend(super().generate([job], context))
        return results


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A live roomrender: (base URL, token)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with isolated_database() as database_url:
        settings = Settings(data_dir=tmp_path_factory.mktemp("data"), database_url=database_url,
                            public_base_url=base_url, allow_private_urls=True,
                            worker_poll_seconds=0.02, heartbeat_seconds=0.1,
                            webhook_poll_seconds=0.05, webhook_retry_schedule=[0, 0.05, 0.05])
        services = build_services(settings, engine=ScriptedEngine())
        _, token = services.keys.create("replicate-app")
        app = create_app(settings, services=services, workers=1, janitor=False)
        with run_uvicorn(app, port) as url:
            yield url, token
        services.db.dispose()


@pytest.fixture
def client(server: tuple[str, str]) -> Any:
    base_url, token = server
    return replicate.Client(api_token=token, base_url=base_url)


@pytest.fixture(scope="module")
def photo_url() -> Iterator[str]:
    with serve_files({"/room.jpg": (make_room_photo(320, 240), "image/jpeg")}) as base:
        yield f"{base}/room.jpg"


def download(url: str) -> Image.Image:
    answer = httpx.get(url)
    answer.raise_for_status()
    from io import BytesIO

    return Image.open(BytesIO(answer.content))


def test_run_with_an_image_url_answers_the_rendered_image(client, photo_url):
    output = client.run(INTERIOR, input={"image": photo_url, "prompt": "a japandi living room",
                                         "num_inference_steps": 30, "seed": 3})
    # An https output would come back as the client's FileOutput; this server speaks http.
    url = str(output)
    assert url.startswith(client._base_url + "/files/")
    assert download(url).size == (320, 240)


def test_run_with_a_local_file_uploads_it_first(client, tmp_path: Path):
    path = tmp_path / "my room.jpg"
    path.write_bytes(make_room_photo(200, 150))
    with path.open("rb") as image:
        output = client.run(INTERIOR, input={"image": image, "prompt": "a bright kitchen"})
    assert download(str(output)).size == (200, 150)
    uploaded = [f for f in client.files.list() if f.name == "my room.jpg"]
    assert len(uploaded) == 1 and uploaded[0].content_type == "image/jpeg"
    assert uploaded[0].urls["get"] == f"{client._base_url}/v1/files/{uploaded[0].id}"


def test_create_then_wait_then_list(client, photo_url):
    prediction = client.predictions.create(version=VERSION, input={"image": photo_url, "prompt": "x"})
    # The idle worker is woken as the job is queued: it may have taken it already.
    assert prediction.status in ("starting", "processing", "succeeded")
    prediction.wait()
    assert prediction.status == "succeeded" and prediction.error is None
    assert str(prediction.output).startswith(client._base_url + "/files/")
    assert prediction.metrics["predict_time"] >= 0
    assert prediction.progress is not None and prediction.progress.percentage == 1.0
    listed = client.predictions.list()
    assert prediction.id in [p.id for p in listed.results]
    assert client.predictions.get(prediction.id).output == prediction.output


def test_cancel_stops_a_running_prediction(client, photo_url):
    prediction = client.predictions.create(version=VERSION, input={"image": photo_url, "prompt": SLOW})
    deadline = time.monotonic() + 20
    while prediction.status != "processing":
        assert time.monotonic() < deadline, prediction.status
        time.sleep(0.05)
        prediction.reload()
    prediction.cancel()
    prediction.wait()
    assert prediction.status == "canceled" and prediction.output is None
    # Stopped at a step: well before the slow run's end.
    assert prediction.metrics["predict_time"] < SLOW_STEPS * SLOW_STEP_SECONDS


@pytest.mark.slow
def test_prefer_wait_answers_the_finished_prediction_or_starting(client, photo_url):
    quick = client.predictions.create(version=VERSION, input={"image": photo_url, "prompt": "x"}, wait=30)
    assert quick.status == "succeeded" and quick.output is not None
    started = time.monotonic()
    slow = client.predictions.create(version=VERSION, input={"image": photo_url, "prompt": SLOW}, wait=1)
    assert 0.9 < time.monotonic() - started < SLOW_STEPS * SLOW_STEP_SECONDS
    assert slow.status == "starting"
    slow.wait()
    assert slow.status == "succeeded"


def test_a_failed_prediction_raises_the_clients_model_error(client, photo_url):
    with pytest.raises(ModelError) as raised:
        client.run(INTERIOR, input={"image": photo_url, "prompt": FAIL})
    assert raised.value.prediction.status == "failed"
    assert "ran out of ideas" in str(raised.value)


def test_api_errors_raise_the_clients_replicate_error(client, photo_url):
    with pytest.raises(ReplicateError) as raised:
        client.predictions.create(version=VERSION, input={"image": photo_url, "promt": "typo"})
    assert (raised.value.status, raised.value.title) == (422, "Input validation failed")
    assert "Additional property promt is not allowed" in raised.value.detail
    with pytest.raises(ReplicateError) as unknown:
        client.run("nobody/nothing:" + "0" * 64, input={})
    assert unknown.value.status == 422 and unknown.value.title == "Invalid version or not permitted"
    with pytest.raises(ReplicateError) as unauthenticated:
        replicate.Client(api_token="rr_nope", base_url=client._base_url).predictions.list()
    assert unauthenticated.value.status == 401


def test_webhooks_are_the_prediction_signed_with_standard_webhooks(client, photo_url):
    secret = client.webhooks.default.secret()
    with Receiver() as receiver:
        prediction = client.predictions.create(
            version=VERSION, input={"image": photo_url, "prompt": "x"},
            webhook=receiver.url(), webhook_events_filter=["start", "completed"])
        prediction.wait()
        deadline = time.monotonic() + 20
        while len(receiver.calls) < 2:
            assert time.monotonic() < deadline, receiver.calls
            time.sleep(0.05)
    bodies = [call.verify(secret.key) for call in receiver.calls]
    assert [b["status"] for b in bodies] == ["processing", "succeeded"]
    assert all(b["id"] == prediction.id for b in bodies)
    assert bodies[1]["output"] == prediction.output
    for call in receiver.calls:
        # Replicate's own checker agrees.
        Webhooks.validate(headers=call.headers, body=call.body.decode(), secret=secret)


@pytest.mark.slow
def test_the_stream_is_read_by_the_clients_event_source(client, photo_url):
    prediction = client.predictions.create(version=VERSION, input={"image": photo_url, "prompt": SLOW})
    events = list(prediction.stream())
    kinds = [event.event for event in events]
    assert kinds[-1] == ServerSentEvent.EventType.DONE
    assert ServerSentEvent.EventType.LOGS in kinds
    outputs = [str(event.data) for event in events if event.event == ServerSentEvent.EventType.OUTPUT]
    prediction.reload()
    assert outputs == [prediction.output]


def test_models_and_versions_read_by_the_client(client):
    model = client.models.get("adirik/interior-design")
    assert model.latest_version.id == VERSION
    assert model.latest_version.openapi_schema["components"]["schemas"]["Input"]["required"] == ["image", "prompt"]
    assert [v.id for v in model.versions.list()] == [VERSION]
    hough = client.models.get("jagilley/controlnet-hough")
    assert hough.latest_version.openapi_schema["components"]["schemas"]["Output"]["type"] == "array"


HOUGH = "jagilley/controlnet-hough:854e8727697a057c525cdb45ab037f64ecca770a1769cc52287c2e56472a247b"


def bright_rows(lines: np.ndarray, row: int, columns: slice) -> float:
    """The share of `columns` with a bright pixel within 3 rows of `row`."""
    band = lines[max(0, row - 3) : row + 4, columns]
    return float((band.max(axis=0) > 128).mean())


def test_controlnet_hough_on_the_preview_engine_answers_the_line_map_then_the_image(client, photo_url):
    # What roomGPT sends, on a server running the embedded default (the preview engine).
    output = client.run(HOUGH, input={
        "image": photo_url, "prompt": "a modern living room",
        "a_prompt": "best quality, extremely detailed, photo from Pinterest, interior",
        "n_prompt": "longbody, lowres, bad anatomy", "num_samples": "1", "image_resolution": "512"})
    assert isinstance(output, list) and len(output) == 2
    line_map, image = (download(str(url)) for url in output)
    assert line_map.size == image.size == (320, 240)
    lines = np.asarray(line_map.convert("L"))
    # The synthetic room's straight edges (roomrender.samples.room_image): the ceiling meets the
    # walls at y=48 and the walls the floor at y=168; the sofa's top is at y=120, its left side at x=160.
    assert bright_rows(lines, 48, slice(8, 312)) > 0.8
    assert bright_rows(lines, 168, slice(8, 150)) > 0.5
    assert bright_rows(lines, 120, slice(168, 280)) > 0.8
    assert bright_rows(lines.T, 160, slice(126, 174)) > 0.8
    # Dark where the photo is flat: the ceiling, the wall between the window and the sofa.
    assert lines[6:40, 8:312].max() < 64 and lines[128:160, 112:152].max() < 64
    assert (lines > 128).mean() < 0.1
    # The second output is the rendered image, not the map.
    assert np.asarray(image.convert("L")).mean() > 3 * lines.mean()
