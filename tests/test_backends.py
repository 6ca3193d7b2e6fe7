"""Engines and storages are found by name among installed distributions' entry points
(`roomrender.engines`, `roomrender.storage`), as a third-party package would add its own."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from roomrender.canonical.models import GenerationRequest
from roomrender.config import Settings
from roomrender.engines import load_engine
from roomrender.engines.preview import PreviewEngine
from roomrender.services import build_services
from roomrender.storage import LocalStorage, open_storage
from tests.conftest import drain
from tests.fakes import AllTasksEngine

THIRD_PARTY_MODULE = '''
from pathlib import Path
from urllib.parse import urlparse

from roomrender.storage.local import LocalStorage
from tests.fakes import AllTasksEngine


class ThirdPartyEngine(AllTasksEngine):
    name = "third-party"

    def __init__(self, settings):
        super().__init__()


class Shelf(LocalStorage):
    """Files on a shelf: shelf:///path."""


def open_shelf(url, options):
    return Shelf(Path(urlparse(url).path), options.public_base_url)
'''


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution installed on sys.path: its module and its dist-info with entry points."""
    site = tmp_path / "site"
    info = site / "roomrender_third_party-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: roomrender-third-party\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [roomrender.engines]
        third-party = roomrender_third_party:ThirdPartyEngine

        [roomrender.storage]
        shelf = roomrender_third_party:open_shelf
        """))
    (site / "roomrender_third_party.py").write_text(THIRD_PARTY_MODULE)
    monkeypatch.syspath_prepend(str(site))
    return tmp_path


def test_the_packaged_engines_and_storages_are_found_by_name(tmp_path: Path) -> None:
    assert isinstance(load_engine(Settings(engine="preview")), PreviewEngine)
    storage = open_storage(f"file://{tmp_path}/files", "http://testserver")
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path / "files"


def test_a_third_party_engine_is_found_by_its_entry_point_and_runs_jobs(
        third_party: Path, settings: Settings) -> None:
    chosen = settings.model_copy(update={"engine": "third-party"})
    engine = load_engine(chosen)
    assert type(engine).__name__ == "ThirdPartyEngine" and engine.name == "third-party"

    services = build_services(chosen)
    try:
        assert services.engine.name == "third-party"
        owner = services.keys.create("t")[0]
        job = services.jobs.submit(owner, GenerationRequest(task="text_to_image", prompt="a loft"))
        drain(services)
        assert services.jobs.get(owner, job.id).status == "succeeded"
    finally:
        services.db.dispose()


def test_a_third_party_storage_is_found_by_its_url_scheme(third_party: Path) -> None:
    storage = open_storage(f"shelf://{third_party}/renders", "http://testserver")
    assert type(storage).__name__ == "Shelf"
    storage.put("out-abc.png", b"png bytes", "image/png")
    assert (third_party / "renders" / "ou" / "out-abc.png").read_bytes() == b"png bytes"
    assert storage.url("out-abc.png") == "http://testserver/files/out-abc.png"


def test_an_unknown_engine_names_the_installed_ones(third_party: Path) -> None:
    with pytest.raises(ValueError) as refused:
        load_engine(Settings(engine="stable-cascade"))
    message = str(refused.value)
    assert "'stable-cascade'" in message
    assert "diffusers, preview, third-party" in message and "package.module:factory" in message


def test_an_unknown_storage_scheme_names_the_installed_ones() -> None:
    with pytest.raises(ValueError, match=r"ftp://x/y.*file://, s3://"):
        open_storage("ftp://x/y", "http://testserver")


def test_an_engine_still_loads_from_a_module_and_factory() -> None:
    engine = load_engine(Settings(engine="tests.fakes:all_tasks_engine"))
    assert isinstance(engine, AllTasksEngine)


def test_warm_up_is_part_of_every_packaged_engine() -> None:
    engine = load_engine(Settings(engine="preview"))
    assert engine.warm_up() is None  # nothing to load: no weights
