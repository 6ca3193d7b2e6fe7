"""`roomrender models pull`: exactly the registry's files, from a local server laid out like the
Hugging Face Hub (HF_ENDPOINT), with progress, resuming a file whose connection drops."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
huggingface_hub = pytest.importorskip("huggingface_hub")

from typer.testing import CliRunner  # noqa: E402

from roomrender.cli import app as cli_app  # noqa: E402
from roomrender.engines.diffusers.registry import load_registry  # noqa: E402
from tests.hub_server import HubServer, repo_files  # noqa: E402

DROPPED = "stable-diffusion-v1-5/stable-diffusion-v1-5/unet/diffusion_pytorch_model.safetensors"
# What real repositories hold besides what the engine reads: single-file checkpoints, pickled
# duplicates, other variants, model cards, components we do not load.
DECOYS = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": [
        "v1-5-pruned-emaonly.safetensors", "unet/diffusion_pytorch_model.bin", "safety_checker/config.json",
        "README.md"],
    "stabilityai/stable-diffusion-xl-base-1.0": [
        "sd_xl_base_1.0.safetensors", "unet/diffusion_pytorch_model.safetensors", "unet/openvino_model.xml"],
    "xinsir/controlnet-union-sdxl-1.0": ["diffusion_pytorch_model_promax.safetensors", "config_promax.json",
                                         "images/000001.png"],
    "h94/IP-Adapter": ["models/ip-adapter-plus_sd15.safetensors", "models/image_encoder/pytorch_model.bin",
                       "sdxl_models/ip-adapter_sdxl.safetensors"],
    "diffusers/stable-diffusion-xl-1.0-inpainting-0.1": ["vae/config.json", "vae/diffusion_pytorch_model.safetensors",
                                                         "text_encoder/config.json"],
}


def files_below(folder: Path) -> set[str]:
    """Every file, but huggingface_hub's own bookkeeping (.cache/huggingface/)."""
    return {name for name in repo_files(folder) if not name.startswith(".cache/")}


@pytest.fixture
def hub(models_dir: Path, tmp_path: Path) -> Path:
    """The tiny models as hub repositories, with decoys beside what the engine reads."""
    root = tmp_path / "hub"
    registry = load_registry()
    for repo in {spec.id for spec in registry.models.values() if not registry.is_gated(spec)}:
        shutil.copytree(models_dir / repo, root / repo)
        for decoy in DECOYS.get(repo, []):
            (root / repo / decoy).parent.mkdir(parents=True, exist_ok=True)
            (root / repo / decoy).write_bytes(b"not for the engine")
    return root


@pytest.mark.slow
def test_pull_fetches_exactly_the_registry_files_with_progress_and_resumes(
        hub: Path, models_dir: Path, registry_file: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "models"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_REGISTRY", str(registry_file))
    monkeypatch.setenv("COLUMNS", "250")
    # huggingface_hub writes what it received in 10 MB chunks, so a resume starts at a multiple
    # of that: fine for real checkpoints (GBs), not for a 4 MB tiny UNet. Smaller chunks here.
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    # huggingface_hub draws its bars on a terminal only, unless told so (stderr is a pipe here).
    monkeypatch.setenv("TQDM_POSITION", "-1")
    with HubServer(hub, drop_once=DROPPED) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        result = CliRunner().invoke(cli_app, ["models", "pull", "all", "--models-dir", str(target)])
        log = server.state.log

    assert result.exit_code == 0, result.output
    # Every repository arrives as the engine reads it: the tiny models folder, file for file,
    # and not one decoy.
    registry = load_registry()
    for repo in DECOYS | {spec.id: [] for spec in registry.models.values() if not registry.is_gated(spec)}:
        assert files_below(target / repo) == files_below(models_dir / repo), repo
        for name in files_below(target / repo):
            assert (target / repo / name).read_bytes() == (models_dir / repo / name).read_bytes()
    # The dropped file was resumed where it broke, not fetched again from the start.
    repo, _, name = DROPPED.partition("/unet/")
    gets = [r for r in log if r.method == "GET" and r.path.startswith(f"/{repo}/resolve/")
            and r.path.endswith(f"/unet/{name}")]
    assert len(gets) == 2 and gets[0].range is None
    assert gets[1].range is not None and int(gets[1].range.split("=")[1].split("-")[0]) > 0
    # Progress bars (huggingface_hub's, on stderr, a bar per file) and the check after the pull.
    assert "diffusion_pytorch_model.safetensors: 100%" in result.stderr
    ready = next(line for line in result.output.splitlines() if line.startswith("ready:"))
    assert "sd15:restyle" in ready and "sdxl:restyle" in ready and "sd15:instruct" in ready
    assert "missing:" not in result.output

    # A second pull asks only whether the files changed: nothing is fetched again.
    with HubServer(hub) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        again = CliRunner().invoke(cli_app, ["models", "pull", "sdxl", "--models-dir", str(target)])
        assert again.exit_code == 0, again.output
        assert not [r for r in server.state.log if r.method == "GET" and "/resolve/" in r.path]


def test_pull_of_a_task_fetches_only_that_tasks_models(hub: Path, tmp_path: Path, registry_file: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "models"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_REGISTRY", str(registry_file))
    with HubServer(hub) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        result = CliRunner().invoke(cli_app, ["models", "pull", "instruct", "--models-dir", str(target)])

    assert result.exit_code == 0, result.output
    # InstructPix2Pix and its previews' decoder; the LCM-LoRA does not apply to it.
    assert sorted(p.relative_to(target).as_posix() for p in target.glob("*/*")) == [
        "madebyollin/taesd", "timbrooks/instruct-pix2pix"]
    index = json.loads((target / "timbrooks/instruct-pix2pix/model_index.json").read_text())
    assert index["_class_name"]


def test_pull_names_an_unknown_target(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["models", "pull", "flux", "--models-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "neither a task" in result.output
