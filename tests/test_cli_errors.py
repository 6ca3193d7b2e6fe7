"""The command line as a new user meets it: what goes wrong outside roomrender is one line and
no traceback, output into a pipe keeps every id whole, a taken port is explained, a waiting job
says what it waits for."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roomrender.api.native import routes as native_routes
from roomrender.app import create_app
from roomrender.cli import app
from tests.conftest import make_room_photo
from tests.servers import free_port, run_uvicorn

ROOT = Path(__file__).resolve().parents[1]


def roomrender(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`roomrender ARGS` as a user runs it, in a process of its own (stdout a pipe, not a terminal)."""
    return subprocess.run([sys.executable, "-m", "roomrender.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_a_server_that_is_down_is_one_line_and_no_traceback(tmp_path):
    photo = tmp_path / "room.jpg"
    photo.write_bytes(make_room_photo(64, 48))
    port = free_port()  # nothing listens there
    result = roomrender("submit", str(photo), "--server", f"http://127.0.0.1:{port}", "--key", "rr_x")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    [line] = result.stderr.strip().splitlines()
    assert f"cannot reach the roomrender server at http://127.0.0.1:{port}" in line
    assert "refused" in line and "ROOMRENDER_URL" in line


def test_a_database_that_cannot_be_reached_is_one_line(tmp_path):
    result = roomrender("keys", "list", env={
        "ROOMRENDER_DATA_DIR": str(tmp_path),
        "ROOMRENDER_DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "the database cannot be reached" in line and "ROOMRENDER_DATABASE_URL" in line


def test_models_check_into_a_pipe_shows_whole_model_ids_and_no_none(tmp_path):
    result = roomrender("models", "check", "all", "--models-dir", str(tmp_path),
                        env={"COLUMNS": "60", "HF_HUB_CACHE": str(tmp_path / "hf")})
    assert result.returncode == 1, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
    assert rows[0] == ["task", "model", "kind", "licence", "status"]
    models = {row[1] for row in rows[1:]}
    assert "stable-diffusion-v1-5/stable-diffusion-inpainting" in models
    assert "latent-consistency/lcm-lora-sdv1-5/pytorch_lora_weights.safetensors" in models
    assert not [row for row in rows if "…" in "".join(row)]
    assert "None" not in result.stdout
    # Every row names its task, so a grep keeps it.
    assert all(row[0] for row in rows)
    assert "roomrender models pull all" in result.stdout
    assert "one task: `roomrender models pull sd15:" in result.stdout


def test_models_list_lists_the_registry(tmp_path):
    result = roomrender("models", "list")
    assert result.returncode == 0, result.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()}
    assert rows["model"] == ["model", "kind", "licence", "tasks"]
    inpainting = rows["stable-diffusion-v1-5/stable-diffusion-inpainting"]
    assert inpainting[2] == "creativeml-openrail-m" and "sd15:restyle" in inpainting[3]


def test_keys_list_into_a_pipe_keeps_whole_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOMRENDER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "40")
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--name", "a studio with a long name [test]"])
    assert created.exit_code == 0, created.output
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    [header, row] = [line.split("\t") for line in listed.output.splitlines()]
    assert header[:3] == ["id", "name", "prefix"]
    assert row[1] == "a studio with a long name [test]" and len(row[0]) >= 16


def test_models_pull_without_the_diffusers_extra_says_what_to_install(tmp_path, monkeypatch):
    # As on a base install: huggingface_hub (and the engine's modules) cannot be imported.
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    monkeypatch.delitem(sys.modules, "roomrender.engines.diffusers.pull", raising=False)
    result = CliRunner().invoke(app, ["models", "pull", "sd15:restyle", "--models-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "the `diffusers` extra" in result.output and "pip install 'roomrender[diffusers]'" in result.output
    assert "Traceback" not in result.output


def test_models_pull_from_a_hub_that_cannot_be_reached_names_it_and_hf_endpoint(tmp_path):
    pytest.importorskip("huggingface_hub")
    hub = f"http://127.0.0.1:{free_port()}"
    result = roomrender("models", "pull", "sd15:restyle", "--models-dir", str(tmp_path),
                        env={"HF_ENDPOINT": hub, "HF_HUB_CACHE": str(tmp_path / "hf"), "COLUMNS": "300"})
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert f"cannot reach the Hugging Face Hub at {hub}" in result.stdout
    assert "HF_ENDPOINT" in result.stdout


def test_a_taken_port_is_explained_with_how_to_pick_another(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = roomrender("serve", "--port", str(port), env={"ROOMRENDER_DATA_DIR": str(tmp_path)})
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert f"port {port} on 127.0.0.1 is taken" in output and f"ROOMRENDER_PORT={port + 1}" in output
    # Nothing was started: no key was made.
    assert "rr_" not in output


def test_a_restart_says_how_to_make_a_key(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOMRENDER_DATA_DIR", str(tmp_path))
    assert CliRunner().invoke(app, ["keys", "create", "--name", "first"]).exit_code == 0
    # Up to where uvicorn would start listening.
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: None)
    result = CliRunner().invoke(app, ["serve", "--port", str(free_port())])
    assert result.exit_code == 0, result.output
    assert "rr_" not in result.output
    assert "roomrender keys create --name <who>" in result.output


def test_submit_wait_says_the_job_waits_for_a_worker(tmp_path, settings, monkeypatch):
    from roomrender.services import build_services

    # Quiet streams look at the job every 0.3 s; no worker for 0.5 s is "none".
    monkeypatch.setattr(native_routes, "EVENT_KEEPALIVE_SECONDS", 0.3)
    port = free_port()
    settings = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}",
                                           "no_worker_after_seconds": 0.5})
    services = build_services(settings)
    key = services.keys.create("cli")[1]
    owner = services.keys.authenticate(key)
    photo = tmp_path / "room.jpg"
    photo.write_bytes(make_room_photo(64, 48))
    lines: list[str] = []
    with run_uvicorn(create_app(settings, services=services, workers=0, janitor=False), port) as base:
        submit = subprocess.Popen(
            [sys.executable, "-m", "roomrender.cli", "submit", str(photo), "--wait", "--server", base,
             "--key", key], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
        try:
            assert submit.stdout is not None
            for line in submit.stdout:
                lines.append(line.strip())
                if line.startswith("waiting for"):
                    # Told: the test stands in for the user, who gives up.
                    job_id = next(seen.split()[1] for seen in lines if seen.startswith("job "))
                    services.jobs.cancel(owner, job_id)
            assert submit.wait(30) == 1, lines
        finally:
            submit.kill()
    services.db.dispose()
    told = [line for line in lines if line.startswith("waiting for")]
    assert len(told) == 1 and "a worker: none has taken a job" in told[0] and "roomrender worker" in told[0]
    assert any("job canceled" in line for line in lines)
