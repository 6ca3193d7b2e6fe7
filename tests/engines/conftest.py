"""Tiny random checkpoints for the diffusers engine tests, built once per session (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roomrender.catalog import load_data_file


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from roomrender.engines.diffusers.random_models import build_models_dir

    return build_models_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def registry_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged registry at CPU-test size: 64 px working resolution, 2 steps."""
    data = load_data_file("diffusers_registry.json")
    data["defaults"]["resolution"] = 64
    data["defaults"]["fast"]["steps"] = 2
    for entry in data["tasks"].values():
        entry["steps"] = 2
    path = tmp_path_factory.mktemp("registry") / "registry.json"
    path.write_text(json.dumps(data))
    return path
