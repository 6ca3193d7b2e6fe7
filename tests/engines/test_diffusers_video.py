"""Issue 26 on CPU: Wan 2.2 TI2V-5B's real diffusers pipeline (WanImageToVideoPipeline,
`expand_timesteps`) on tiny random components laid out as its Hub repository, loaded by the code
users run, through the worker: a native `video` job and a Luw `model=video` become MP4s of the
asked length, size and rate; progress per step, live previews, cancel leaves no file."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("ftfy")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from roomrender.app import create_app  # noqa: E402
from roomrender.canonical.models import GenerationRequest, Task  # noqa: E402
from roomrender.config import Settings  # noqa: E402
from roomrender.engines.base import BatchCanceled, BatchContext, EngineJob  # noqa: E402
from roomrender.engines.diffusers.engine import DiffusersEngine  # noqa: E402
from roomrender.engines.diffusers.registry import load_registry  # noqa: E402
from roomrender.engines.diffusers.video import decode_frames, model_frames, video_prompt  # noqa: E402
from roomrender.services import build_services  # noqa: E402
from tests.conftest import BASE_URL, data_uri, drain, make_room_photo  # noqa: E402
from tests.engines import conftest as engine_tests  # noqa: E402
from tests.test_luw_client import LuwClient  # noqa: E402
from tests.video_files import decode  # noqa: E402

pytestmark = pytest.mark.torch
WAN = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"


@pytest.fixture(scope="module")
def video_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CPU-test registry (64 px working size, 2 steps), a live preview every step."""
    data = engine_tests.test_size_registry()
    data["families"]["wan"]["tasks"]["video"]["preview_every"] = 1
    path = tmp_path_factory.mktemp("video-registry") / "registry.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def engine(models_dir: Path, video_registry: Path) -> DiffusersEngine:
    return DiffusersEngine(load_registry(video_registry), models_dir)


def photo() -> Image.Image:
    return Image.open(io.BytesIO(make_room_photo(96, 64, fmt="PNG"))).convert("RGB")


def test_the_tiny_wan_is_laid_out_as_the_hub_repository(models_dir: Path) -> None:
    root = models_dir / WAN
    index = json.loads((root / "model_index.json").read_text())
    assert index["expand_timesteps"] is True and index["transformer"] == ["diffusers", "WanTransformer3DModel"]
    assert json.loads((root / "vae/config.json").read_text())["z_dim"] == 48
    assert json.loads((root / "vae/config.json").read_text())["scale_factor_spatial"] == 16
    assert json.loads((root / "text_encoder/config.json").read_text())["architectures"] == ["UMT5EncoderModel"]
    assert (root / "tokenizer/tokenizer.json").is_file()


def test_the_clip_is_decoded_frame_by_frame_exactly_as_the_vae_decodes_it(models_dir: Path) -> None:
    from diffusers import AutoencoderKLWan

    vae = AutoencoderKLWan.from_pretrained(models_dir / WAN / "vae", local_files_only=True)
    latents = torch.randn(1, 48, 3, 4, 6, generator=torch.Generator().manual_seed(0))
    streamed = [frame for _, frame in decode_frames(vae, latents)]
    whole = vae.decode(latents).sample[0]  # latents_mean 0, latents_std 1 in the tiny VAE
    expected = ((whole.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()
    assert len(streamed) == 1 + 2 * 4 == model_frames(8 / 24, 24)
    assert np.array_equal(np.stack(streamed), expected)


def test_the_camera_move_leads_the_prompt() -> None:
    request = GenerationRequest(task=Task.video, image="x", camera="orbit", prompt="a sunlit loft.")
    assert video_prompt(request).startswith("the camera orbits gently around the centre of the room, a sunlit loft")


def test_a_native_job_and_a_luw_video_become_mp4s_through_the_worker(
        settings: Settings, models_dir: Path, video_registry: Path, engine: DiffusersEngine) -> None:
    services = build_services(settings.model_copy(update={
        "engine": "diffusers", "models_dir": models_dir, "diffusers_registry": video_registry}), engine=engine)
    try:
        _, token = services.keys.create("tours", credits=100)
        headers = {"Authorization": f"Bearer {token}"}
        app = create_app(services.settings, services=services, workers=0, janitor=False)
        with TestClient(app, base_url=BASE_URL, headers=headers) as client:
            native = client.post("/v1/jobs", json={
                "task": "video", "image": data_uri(make_room_photo(96, 64)), "camera": "pan_left",
                "duration": 2, "fps": 8, "resolution": "480p", "seed": 4, "prompt": "a calm bedroom"})
            assert native.status_code == 202, native.text
            luw = LuwClient(BASE_URL, token)
            luw.http = client
            started = luw.generate(model="video", image=data_uri(make_room_photo(96, 64)),
                                   styles="Flythrough Cinematic", duration=2, fps=10, resolution="480p")
            assert started["status"] is True, started
            drain(services)

            job = client.get(f"/v1/jobs/{native.json()['id']}").json()
            assert job["status"] == "succeeded", job
            [video] = job["outputs"]
            assert (video["kind"], video["width"], video["height"], video["fps"]) == ("video", 720, 480, 8)
            clip = decode(client.get(video["url"]).content)
            assert (clip.codec, clip.pix_fmt, clip.audio_streams, clip.index_first) == ("h264", "yuv420p", 0, True)
            assert (clip.width, clip.height, clip.fps) == (720, 480, 8) and abs(clip.frames - 16) <= 1
            poster = Image.open(io.BytesIO(client.get(video["poster_url"]).content))
            assert poster.size == (720, 480)

            done = luw.results(started["processing_url"])
            assert done["status"] is True and isinstance(done["output"], str), done
            tour = decode(client.get(done["output"]).content)
            assert (tour.width, tour.height, tour.fps) == (720, 480, 10) and abs(tour.frames - 20) <= 1
    finally:
        services.db.dispose()


def test_progress_by_step_previews_and_cancel_mid_clip_leaves_no_file(
        engine: DiffusersEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    request = GenerationRequest(task=Task.video, image="x", duration=2, fps=8, resolution="480p", seed=1,
                                steps=3)
    reports: list[float] = []
    previews: list[Image.Image] = []
    finished = engine.generate([EngineJob("tour", request, {"image": photo()})],
                               BatchContext(lambda _job, f: reports.append(f), lambda _job: False,
                                            lambda _job, image: previews.append(image)))
    [[video]] = finished  # type: ignore[misc]
    # Three denoising steps, then the 13 latent frames (49 frames at 24 fps) decoded one by one.
    assert len(reports) == 3 + 13 and reports == sorted(reports) and reports[-1] == 1.0
    assert len(previews) == 2 and previews[0].size == (96, 64)  # every step but the last
    video.path.unlink()

    canceled: list[float] = []
    results = engine.generate([EngineJob("tour", request, {"image": photo()})],
                              BatchContext(lambda _job, f: canceled.append(f), lambda _job: len(canceled) >= 5))
    assert isinstance(results[0], BatchCanceled)
    assert len(canceled) == 5 and canceled[-1] < 1  # stopped while decoding, mid-clip
    assert list(tmp_path.iterdir()) == []


def test_wan_stays_on_a_large_gpu_and_is_offloaded_on_a_24_gb_card() -> None:
    from roomrender.engines.diffusers.cache import GIB
    from roomrender.engines.diffusers.video_memory import needs_offload

    spec = load_registry().spec_for(Task.video)
    assert spec is not None and (spec.family, spec.pipeline) == ("wan", "WanImageToVideoPipeline")
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert needs_offload(spec, cuda, 19 * GIB)  # a 24 GB card's default budget
    assert not needs_offload(spec, cuda, 63 * GIB)  # an 80 GB H100's
    assert not needs_offload(spec, cpu, 1 * GIB)  # offloading to the CPU from the CPU moves nothing


def test_models_pull_video_fetches_exactly_what_the_engine_reads(
        models_dir: Path, registry_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from typer.testing import CliRunner

    from roomrender.cli import app as cli_app
    from tests.engines.test_models_pull import files_below
    from tests.hub_server import HubServer

    hub = tmp_path / "hub"
    shutil.copytree(models_dir / WAN, hub / WAN)
    # What the real repository holds besides: its card, pictures, a pickled duplicate.
    for decoy in ("README.md", "assets/logo.png", "examples/i2v_input.JPG", "text_encoder/pytorch_model.bin"):
        (hub / WAN / decoy).parent.mkdir(parents=True, exist_ok=True)
        (hub / WAN / decoy).write_bytes(b"not for the engine")
    target = tmp_path / "models"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_REGISTRY", str(registry_file))
    with HubServer(hub) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        result = CliRunner().invoke(cli_app, ["models", "pull", "video", "--models-dir", str(target)])

    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(target).as_posix() for p in target.glob("*/*")) == [WAN]
    assert files_below(target / WAN) == files_below(models_dir / WAN)
    assert "wan:video" in next(line for line in result.output.splitlines() if line.startswith("ready:"))
