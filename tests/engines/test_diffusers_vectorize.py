"""The diffusers engine traces pictures too (tracing is not AI): no model is loaded for it."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from roomrender.canonical.models import GenerationRequest, Task  # noqa: E402
from roomrender.engines.base import BatchContext, EngineJob, RenderedVector  # noqa: E402
from roomrender.engines.diffusers.engine import DiffusersEngine  # noqa: E402
from roomrender.engines.diffusers.registry import load_registry  # noqa: E402
from tests.conftest import make_room_photo  # noqa: E402


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
