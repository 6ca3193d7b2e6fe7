"""Tiny random checkpoints for the diffusers engine tests, built once per session (offline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from roomrender.catalog import load_data_file


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from roomrender.engines.diffusers.random_models import build_models_dir

    return build_models_dir(tmp_path_factory.mktemp("models"))


def test_size_registry() -> dict[str, Any]:
    """The packaged registry at CPU-test size, every family: 64 px working resolution, 2 steps, a
    live preview every step."""
    data = load_data_file("diffusers_registry.json")
    for family in [data, *data["families"].values()]:
        defaults = family.setdefault("defaults", {})
        defaults["resolution"] = 64
        if defaults.get("fast"):
            defaults["fast"]["steps"] = 2
        if defaults.get("preview"):
            defaults["preview"]["every"] = 1
        for entry in family["tasks"].values():
            entry["steps"] = 2
            if "grid_size" in entry:
                entry["grid_size"] = 32  # Shap-E's marching cubes over 32³, not 128³
    return data


@pytest.fixture(scope="session")
def registry_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("registry") / "registry.json"
    path.write_text(json.dumps(test_size_registry()))
    return path
