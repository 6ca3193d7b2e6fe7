"""Logs: plain text by default; with ROOMRENDER_LOG_FORMAT=json one object per line, and every
line about a job carries its id, its key's prefix, its dialect and its task."""

from __future__ import annotations

import io
import json
import logging

import pytest

from roomrender.canonical.models import GenerationRequest
from roomrender.config import Settings
from roomrender.engines.base import BatchContext, EngineJob, JobResult
from roomrender.logs import JsonFormatter, bound, configure
from roomrender.services import build_services
from tests.conftest import data_uri
from tests.fakes import AllTasksEngine


class ExplodingEngine(AllTasksEngine):
    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        raise RuntimeError("out of GPU memory")


def about_job(lines: list[dict], job_id: str) -> list[dict]:
    return [line for line in lines
            if job_id in line.get("message", "") or job_id == line.get("job_id")
            or job_id in (line.get("job_id") or [])]


def test_every_line_about_a_job_names_it_its_key_dialect_and_task(settings: Settings, room_jpeg):
    services = build_services(settings, engine=ExplodingEngine())
    key, plaintext = services.keys.create("acme")
    owner = services.keys.authenticate(plaintext)
    assert owner is not None
    with Captured() as lines:
        job = services.jobs.submit(owner, GenerationRequest(task="restyle", image=data_uri(room_jpeg),
                                                            style="modern"), dialect="luw")
        services.new_worker().run_once()
    lines_about = about_job(lines, job.id)
    messages = [line["message"] for line in lines_about]
    assert any(m.startswith(f"job {job.id} queued") for m in messages), messages
    assert any(m.startswith(f"job {job.id} started") for m in messages), messages
    assert any(m.startswith("engine failed a batch of 1") for m in messages), messages
    assert any(m.startswith(f"job {job.id} failed: generation_failed") for m in messages), messages
    for line in lines_about:
        assert line["job_id"] in (job.id, [job.id])
        assert line["key_prefix"] == key.prefix == plaintext[:10]
        assert line["dialect"] == "luw" and line["task"] == "restyle"
        assert line["level"] in ("debug", "info", "error") and line["time"].endswith("Z")
    [failure] = [line for line in lines_about if line["message"].startswith("engine failed")]
    assert "RuntimeError: out of GPU memory" in failure["exception"]
    assert plaintext not in json.dumps(lines)


class Captured:
    """The JSON lines logged inside the block (the formatter as `configure("info", "json")` sets)."""

    def __enter__(self) -> list[dict]:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.handler.setLevel(logging.DEBUG)
        self.root = logging.getLogger()
        self.old_level = self.root.level
        self.root.addHandler(self.handler)
        self.root.setLevel(logging.DEBUG)
        self.lines: list[dict] = []
        return self.lines

    def __exit__(self, *exc: object) -> None:
        self.root.removeHandler(self.handler)
        self.root.setLevel(self.old_level)
        self.lines.extend(json.loads(line) for line in self.stream.getvalue().splitlines())


def test_lines_about_a_job_submitted_through_a_dialect_name_it(client, auth, api_key, room_jpeg):
    with Captured() as lines:
        created = client.post("/v2/generate", headers=auth, data={
            "model": "interior", "image": data_uri(room_jpeg), "styles": "Modern"})
    assert created.status_code == 200, created.text
    queued = [line for line in lines if line["message"].endswith(" queued")]
    assert queued, lines
    assert queued[0]["dialect"] == "luw" and queued[0]["key_prefix"] == api_key[:10]


def test_json_lines_keep_extra_fields_and_the_default_is_plain_text(capsys):
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        configure("info", "json")
        with bound(job_id="job-1", task="restyle"):
            logging.getLogger("roomrender.test").info("stored %d outputs", 2, extra={"bytes": 10})
        configure("info")
        logging.getLogger("roomrender.test").info("plain again")
        with pytest.raises(ValueError, match="text or json"):
            configure("info", "yaml")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    first, second = capsys.readouterr().err.splitlines()
    entry = json.loads(first)
    assert entry["message"] == "stored 2 outputs" and entry["logger"] == "roomrender.test"
    assert entry["job_id"] == "job-1" and entry["task"] == "restyle" and entry["bytes"] == 10
    assert second.endswith("roomrender.test plain again") and not second.startswith("{")
