"""The diffusers engine traces pictures too (tracing is not AI): no model is loaded for it."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image

from roomrender.canonical.models import GenerationRequest, Task
from roomrender.engines.base import BatchContext, EngineJob, RenderedVector
from roomrender.engines.diffusers.engine import DiffusersEngine
from roomrender.engines.diffusers.registry import load_registry
from tests.conftest import make_room_photo


def test_the_diffusers_engine_vectorizes_without_any_weights(tmp_path: Path) -> None:
    engine = DiffusersEngine(load_registry(), tmp_path / "no-models")  # an empty models folder
    request = GenerationRequest(task=Task.vectorize, image="photo")
    assert Task.vectorize in engine.supported_tasks()
    engine.validate(request)  # no "models missing": it needs none
    assert engine.batch_key(request, 320, 240) == "diffusers:-:vectorize"
    done: list[float] = []
    photo = Image.open(io.BytesIO(make_room_photo(320, 240)))
    [result] = engine.generate([EngineJob("job-1", request, {"image": photo})],
                               BatchContext(lambda _job, fraction: done.append(fraction), lambda _: False))
    assert not isinstance(result, Exception)
    [drawing] = result
    assert isinstance(drawing, RenderedVector) and (drawing.width, drawing.height) == (320, 240)
    assert ElementTree.fromstring(drawing.svg).get("viewBox") == "0 0 320 240"
    assert done == [1.0]


@pytest.mark.parametrize("ratio,size", [("16:9", (1024, 576)), ("2:3", (680, 1024)), ("1:1", (1024, 1024))])
def test_an_aspect_ratio_sets_the_long_side_at_the_models_size_in_multiples_of_eight(ratio, size):
    from roomrender.engines.diffusers.plan import text_size

    request = GenerationRequest(task=Task.text_to_image, prompt="a loft", aspect_ratio=ratio)
    assert text_size(request, 1024) == size
    assert all(side % 8 == 0 for side in size)
    # Sizes asked outright win over the ratio.
    assert text_size(request.model_copy(update={"width": 640, "height": 480}), 1024) == (640, 480)
