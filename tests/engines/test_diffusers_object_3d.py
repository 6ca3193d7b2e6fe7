"""object_3d on the diffusers engine: Shap-E image-to-3D on tiny random components (written to a
models folder, loaded by the real loading code) → a textured GLB; Hunyuan3D-2's licence gate."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from typer.testing import CliRunner  # noqa: E402

from roomrender.canonical.errors import Unsupported  # noqa: E402
from roomrender.canonical.models import GenerationRequest, JobStatus  # noqa: E402
from roomrender.cli import app as cli_app  # noqa: E402
from roomrender.config import Settings  # noqa: E402
from roomrender.engines import load_engine  # noqa: E402
from roomrender.services import Services, build_services  # noqa: E402
from tests.conftest import data_uri, drain  # noqa: E402
from tests.engines.test_diffusers_engine import owner_of  # noqa: E402
from tests.engines.test_models_pull import files_below  # noqa: E402
from tests.glb_checks import checked_glb, object_photo  # noqa: E402
from tests.hub_server import HubServer  # noqa: E402

pytestmark = [pytest.mark.torch]


@pytest.fixture(scope="module")
def engine(models_dir: Path, registry_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_engine(Settings(data_dir=tmp_path_factory.mktemp("unused"), engine="diffusers",
                                models_dir=models_dir, diffusers_registry=registry_file))


@pytest.fixture
def dservices(settings: Settings, models_dir: Path, registry_file: Path, engine: Any) -> Iterator[Services]:
    built = build_services(settings.model_copy(update={"engine": "diffusers", "models_dir": models_dir,
                                                       "diffusers_registry": registry_file}), engine=engine)
    yield built
    built.db.dispose()


def run(services: Services, **fields: Any) -> Any:
    job = services.jobs.submit(owner_of(services), GenerationRequest(task="object_3d", **fields))
    assert drain(services) == 1
    return services.jobs.get(owner_of(services), job.id)


@pytest.mark.slow
def test_shap_e_turns_a_photo_into_a_textured_glb_within_its_budget(dservices: Services, engine: Any) -> None:
    photo = data_uri(object_photo((96, 72)), "image/png")
    job = run(dservices, image=photo, simplify=400, seed=5, dimensions={"height": 0.5})

    assert job.status == JobStatus.succeeded, job.error_message
    [output] = job.outputs
    mesh = checked_glb(dservices.storage.get(output.key), max_faces=400)
    # A solid decoded by Shap-E's renderer, not the preview's 12-face card, at the asked height.
    assert len(mesh.faces) > 12
    assert mesh.extents[1] == pytest.approx(0.5)
    assert min(mesh.extents) > 0.05
    # Its texture is the cut-out photo: the object's blue is in it.
    texture = mesh.visual.material.baseColorTexture.convert("RGB")
    assert (40, 70, 160) in {colour for _, colour in texture.getcolors(1 << 16) or []}
    # The pipeline was loaded through the store, its parts within the memory budget's accounting.
    assert "sd15:object_3d" in engine.store.pipeline_names()
    assert engine.store.parts.resident_bytes > 0


def test_hunyuan3d_is_licence_gated(models_dir: Path, registry_file: Path, tmp_path: Path, engine: Any) -> None:
    # Never a default: a job naming no model runs Shap-E; one naming it is told what to install.
    assert engine.spec_for(GenerationRequest(task="object_3d", image="x")).pipeline == "ShapEImg2ImgPipeline"
    with pytest.raises(Unsupported, match="pip install hy3dgen"):
        engine.validate(GenerationRequest(task="object_3d", image="x", model="hunyuan3d"))

    runner = CliRunner()
    env = {"ROOMRENDER_DIFFUSERS_REGISTRY": str(registry_file), "ROOMRENDER_DATA_DIR": str(tmp_path)}
    checked = runner.invoke(cli_app, ["models", "check", "hunyuan3d", "--models-dir", str(models_dir)], env=env)
    assert "tencent-hunyuan-community" in checked.output and "licence-gated" in checked.output
    assert "--accept-licence tencent-hunyuan-community" in checked.output
    refused = runner.invoke(cli_app, ["models", "pull", "hunyuan3d", "--models-dir", str(tmp_path / "m")], env=env)
    assert refused.exit_code == 2
    assert "--accept-licence tencent-hunyuan-community" in refused.output
    assert not (tmp_path / "m" / "tencent").exists()


CUTOUT_AND_SHAP_E = ["hustvl/vitmatte-small-composition-1k", "openai/shap-e-img2img",
                     "openmmlab/upernet-convnext-small"]


@pytest.fixture
def hub(models_dir: Path, tmp_path: Path) -> Path:
    """The tiny models object_3d needs as hub repositories."""
    root = tmp_path / "hub"
    for repo in CUTOUT_AND_SHAP_E:
        shutil.copytree(models_dir / repo, root / repo)
    return root


def test_pull_of_object_3d_fetches_exactly_shap_e_and_the_cutout_models(
        hub: Path, models_dir: Path, registry_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What openai/shap-e-img2img holds besides what the pipeline reads.
    for decoy in ["shap_e_renderer/diffusion_pytorch_model.bin", "prior/diffusion_pytorch_model.fp16.bin",
                  "README.md"]:
        (hub / "openai/shap-e-img2img" / decoy).write_bytes(b"not for the engine")
    target = tmp_path / "pulled"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("ROOMRENDER_DIFFUSERS_REGISTRY", str(registry_file))
    with HubServer(hub) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        result = CliRunner().invoke(cli_app, ["models", "pull", "object_3d", "--models-dir", str(target)])

    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(target).as_posix() for p in target.glob("*/*")) == CUTOUT_AND_SHAP_E
    shap_e = "openai/shap-e-img2img"
    assert files_below(target / shap_e) == files_below(models_dir / shap_e)
    assert "model_index.json" in files_below(target / shap_e)
    assert "sd15:object_3d" in next(line for line in result.output.splitlines() if line.startswith("ready:"))
