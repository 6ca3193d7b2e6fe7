"""The `roomrender` command, run as a user runs it: keys, and serve + submit against a real server."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from roomrender.cli import app
from tests.conftest import make_room_photo

ROOT = Path(__file__).resolve().parents[1]


def test_keys_create_list_revoke(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOMRENDER_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--name", "studio", "--credits", "50"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("rr_") and " " not in key
    listed = runner.invoke(app, ["keys", "list"])
    assert "studio" in listed.output and "50" in listed.output
    assert key not in listed.output
    prefix = key[:10]
    revoked = runner.invoke(app, ["keys", "revoke", prefix])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert runner.invoke(app, ["keys", "revoke", "nope"]).exit_code == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serve_prints_a_key_and_submit_saves_results(tmp_path):
    port = free_port()
    env = {**os.environ, "ROOMRENDER_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    env.pop("ROOMRENDER_PUBLIC_BASE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "roomrender.cli", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        deadline = time.time() + 30
        while not any(line.startswith("rr_") for line in lines):
            assert time.time() < deadline and server.poll() is None, lines
            lines.append(server.stdout.readline().strip())
        key = next(line for line in lines if line.startswith("rr_"))
        assert any(f"http://127.0.0.1:{port}/docs" in line for line in lines)
        assert f"Playground: http://127.0.0.1:{port}/" in lines
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.time() < deadline
                time.sleep(0.1)
        photo = tmp_path / "room.jpg"
        photo.write_bytes(make_room_photo(300, 200))
        out = tmp_path / "out"
        submitted = subprocess.run(
            [sys.executable, "-m", "roomrender.cli", "submit", str(photo), "--style", "modern",
             "--room", "living_room", "--wait", "--out", str(out),
             "--server", f"http://127.0.0.1:{port}", "--key", key],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        [saved] = list(out.iterdir())
        result = Image.open(saved)
        assert result.size == (300, 200)
        original = Image.open(io.BytesIO(photo.read_bytes())).convert("RGB")
        assert result.convert("RGB").tobytes() != original.tobytes()
    finally:
        server.terminate()
        server.wait(10)


def test_submit_places_a_product(tmp_path, settings):
    from roomrender.app import create_app
    from roomrender.services import build_services
    from tests.servers import free_port as a_free_port
    from tests.servers import run_uvicorn

    port = a_free_port()
    settings = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}",
                                           "worker_poll_seconds": 0.05})
    services = build_services(settings)
    key = services.keys.create("cli")[1]
    room, product = tmp_path / "room.png", tmp_path / "chair.png"
    room.write_bytes(make_room_photo(300, 200, fmt="PNG"))
    chair = Image.new("RGB", (90, 90), (250, 250, 250))
    chair.paste((200, 150, 30), (15, 15, 75, 75))
    chair.save(product)
    out = tmp_path / "out"
    runner = CliRunner()
    with run_uvicorn(create_app(settings, services=services, workers=1, janitor=False), port) as base:
        bad = runner.invoke(app, ["submit", str(room), "--task", "place", "--product", str(product),
                                  "--placement", "1,2,3", "--server", base, "--key", key])
        assert bad.exit_code == 2 and "x,y,w,h" in bad.output
        placed = runner.invoke(app, ["submit", str(room), "--task", "place", "--product", str(product),
                                     "--placement", "100,100,60,60", "--area", "80,80,100,100",
                                     "--wait", "--out", str(out), "--server", base, "--key", key])
        assert placed.exit_code == 0, placed.output
    services.db.dispose()
    [saved] = list(out.iterdir())
    pixels = Image.open(saved).convert("RGB")
    red, green, blue = pixels.getpixel((130, 130))
    assert abs(red - 200) <= 30 and abs(green - 150) <= 30 and abs(blue - 30) <= 30
    assert pixels.getpixel((10, 10)) == Image.open(room).convert("RGB").getpixel((10, 10))


def test_submit_runs_edit_recolor_upscale_and_expand_with_their_flags(tmp_path, settings):
    from roomrender.app import create_app
    from roomrender.services import build_services
    from tests.servers import free_port as a_free_port
    from tests.servers import run_uvicorn

    port = a_free_port()
    settings = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}",
                                           "worker_poll_seconds": 0.05})
    services = build_services(settings)
    key = services.keys.create("cli")[1]
    room = tmp_path / "room.png"
    room.write_bytes(make_room_photo(200, 100, fmt="PNG"))
    mask = tmp_path / "mask.png"
    hole = Image.new("L", (200, 100), 0)
    hole.paste(255, (120, 60, 160, 90))
    hole.save(mask)
    runner = CliRunner()

    def run(*flags: str) -> Image.Image:
        out = tmp_path / flags[1] / str(len(flags))
        result = runner.invoke(app, ["submit", str(room), *flags, "--wait", "--out", str(out),
                                     "--server", base, "--key", key])
        assert result.exit_code == 0, result.output
        [saved] = list(out.iterdir())
        return Image.open(saved).convert("RGB")

    original = Image.open(room).convert("RGB")
    with run_uvicorn(create_app(settings, services=services, workers=1, janitor=False), port) as base:
        edited = run("--task", "edit", "--mask", str(mask), "--remove")
        recolored = run("--task", "recolor", "--color", "#2040C0", "--area", "floor")
        upscaled = run("--task", "upscale", "--scale", "2")
        expanded = run("--task", "expand", "--expand-left", "0.5", "--expand-right", "0",
                       "--expand-top", "0.2")
        # A flag the task does not take is refused before anything is sent.
        refused = runner.invoke(app, ["submit", str(room), "--task", "upscale", "--color", "#000000",
                                      "--server", base, "--key", key])
    services.db.dispose()
    assert refused.exit_code == 2 and "upscale does not take it" in refused.output

    # edit: the masked area is filled from around it, the rest is the photo.
    assert edited.getpixel((140, 75)) != original.getpixel((140, 75))
    assert edited.getpixel((20, 20)) == original.getpixel((20, 20))
    # recolor: the floor (the bottom band) turns blue, the ceiling stays.
    red, green, blue = recolored.getpixel((100, 95))
    assert blue > red and blue > green
    assert recolored.getpixel((100, 5)) == original.getpixel((100, 5))
    assert upscaled.size == (400, 200)
    assert expanded.size == (300, 120)


def test_submit_help_lists_every_task_option_and_flags_take_no_value():
    result = CliRunner().invoke(app, ["submit", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for flag in ("--mask", "--color", "--area", "--scale", "--expand-left", "--expand-bottom",
                 "--placement", "--product-image", "--remove", "--output-format"):
        assert flag in result.output, flag
    assert "<bool>" not in result.output and "BOOLEAN" not in result.output


def test_submit_takes_nested_options_as_json():
    import typer

    from roomrender.canonical.models import GenerationRequest, Task
    from roomrender.task_flags import request_fields, task_flags

    flags = task_flags()
    room = {"kind": "one_point", "top_left": [{"x": 211, "y": 166}, {"x": 133, "y": 113}],
            "top_right": [{"x": 442, "y": 166}, {"x": 529, "y": 113}],
            "bottom_left": [{"x": 211, "y": 333}, {"x": 133, "y": 400}],
            "bottom_right": [{"x": 442, "y": 333}, {"x": 529, "y": 400}]}
    fields = request_fields(Task.measure, flags, {"task_room": json.dumps(room), "task_room_height": 2.6})
    request = GenerationRequest(task=Task.measure, image="room", **fields)
    assert request.room is not None and request.room.kind == "one_point" and request.room_height == 2.6
    with pytest.raises(typer.BadParameter, match="not JSON"):
        request_fields(Task.measure, flags, {"task_room": "{top: 1"})
    help_text = CliRunner().invoke(app, ["submit", "--help"], env={"COLUMNS": "200"}).output
    assert "--room-height" in help_text and "--true-size" in help_text
