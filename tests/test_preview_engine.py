"""The preview engine: honest image processing, checked pixel by pixel."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from roomrender.canonical.models import Expand, GenerationRequest
from roomrender.catalog import find_style
from roomrender.engines.base import BatchContext, EngineJob
from roomrender.engines.preview.engine import (
    PreviewEngine,
    erase,
    expand,
    paint,
    regrade,
    upscale,
)
from tests.conftest import make_room_photo


def photo() -> Image.Image:
    return Image.open(io.BytesIO(make_room_photo(160, 120, fmt="PNG"))).convert("RGB")


def edges(image: Image.Image) -> np.ndarray:
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    return np.abs(np.diff(grey, axis=1))[:-1] + np.abs(np.diff(grey, axis=0))[:, :-1]


def test_restyle_changes_colours_but_keeps_every_edge():
    original = photo()
    styled = regrade(original, find_style("industrial_loft"), 0.6, np.random.default_rng(0))
    assert styled.size == original.size
    difference = np.abs(np.asarray(styled, np.float32) - np.asarray(original, np.float32)).mean()
    assert difference > 5
    strong = edges(original) > 40
    assert (edges(styled)[strong] > 10).mean() > 0.95


def test_different_styles_and_seeds_give_different_images():
    original = photo()
    modern = regrade(original, find_style("modern"), 0.6, np.random.default_rng(0))
    boho = regrade(original, find_style("bohemian"), 0.6, np.random.default_rng(0))
    modern_again = regrade(original, find_style("modern"), 0.6, np.random.default_rng(1))
    assert modern.tobytes() != boho.tobytes()
    assert modern.tobytes() != modern_again.tobytes()


def test_recolor_paints_only_the_masked_area():
    original = photo()
    mask = Image.new("L", original.size, 0)
    mask.paste(255, (0, 0, 80, 120))
    painted = np.asarray(paint(original, mask, "#2040C0"), np.int16)
    before = np.asarray(original, np.int16)
    assert painted[:, :70, 2].mean() > painted[:, :70, 0].mean() + 40  # left half turned blue
    assert np.abs(painted[:, 90:] - before[:, 90:]).max() <= 1  # right half untouched


def test_erase_fills_the_hole_from_its_surroundings():
    wall = Image.new("RGB", (100, 100), (180, 160, 140))
    wall.paste((20, 20, 20), (40, 40, 60, 60))  # a dark object
    mask = Image.new("L", (100, 100), 0)
    mask.paste(255, (38, 38, 62, 62))
    filled = np.asarray(erase(wall, mask), np.int16)
    assert np.abs(filled[50, 50] - [180, 160, 140]).max() < 12


def test_upscale_and_expand_sizes():
    original = photo()
    assert upscale(original, 4).size == (640, 480)
    grown = expand(original, Expand(left=0.25, right=0.25, top=0.1, bottom=0))
    assert grown.size == (240, 132)
    # The original sits unchanged in the middle of the new canvas.
    middle = np.asarray(grown, np.int16)[12:, 40:200]
    assert np.abs(middle - np.asarray(original, np.int16)).max() <= 1


def test_generate_reports_progress_per_variant_and_returns_n_images():
    engine = PreviewEngine()
    seen: list[float] = []
    context = BatchContext(lambda job_id, fraction: seen.append(fraction), lambda job_id: False)
    request = GenerationRequest(task="restyle", image="x", style="zen", n=3, seed=1)
    [result] = engine.generate([EngineJob("job", request, {"image": photo()})], context)
    assert len(result) == 3
    assert seen == [1 / 3, 2 / 3, 1.0]


def test_a_request_for_its_line_map_gets_the_photos_straight_lines_first():
    engine = PreviewEngine()
    context = BatchContext(lambda job_id, fraction: None, lambda job_id: False)
    request = GenerationRequest(task="restyle", image="x", n=2, seed=1, control_map="lines")
    engine.validate(request)  # accepted: image processing draws it
    [result] = engine.generate([EngineJob("job", request, {"image": photo()})], context)
    assert [rendered.label for rendered in result] == ["lines", None, None]
    lines = np.asarray(result[0].image.convert("L"))
    assert lines.shape == (120, 160) and set(np.unique(lines)) <= {0, 255}
    # The ceiling line of the synthetic room (y = 120 / 5) is drawn, its flat ceiling is not.
    assert (lines[22:27].max(axis=0) == 255).mean() > 0.6
    assert lines[3:18].max() == 0
