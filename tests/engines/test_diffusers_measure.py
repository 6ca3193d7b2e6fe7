"""`measure` on the diffusers engine: geometry, the same numbers as everywhere, with no weights."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from roomrender.canonical.models import GenerationRequest, Task
from roomrender.config import Settings
from roomrender.engines import load_engine
from roomrender.engines.base import BatchContext, EngineJob, RenderedData, RenderedImage
from roomrender.engines.preview.engine import PreviewEngine
from tests.synthetic_rooms import Camera, CornerRoom
from tests.test_metrology import corner_marks


def test_the_diffusers_engine_measures_without_any_model(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", engine="diffusers", models_dir=tmp_path / "no-models")
    engine = load_engine(settings)
    room = CornerRoom(Camera(yaw=35, focal_ratio=0.55))
    request = GenerationRequest(task=Task.measure, image="room", room=corner_marks(room),
                                room_height=room.height)
    assert Task.measure in engine.supported_tasks()
    engine.validate(request)  # no weights needed
    assert engine.batch_key(request, 640, 480).startswith("diffusers:")
    context = BatchContext(lambda job_id, fraction: None, lambda job_id: False)
    job = EngineJob("job", request, {"image": room.photo()})
    [result] = engine.generate([job], context)
    [expected] = PreviewEngine().generate([job], context)
    assert not isinstance(result, Exception) and not isinstance(expected, Exception)
    image, data = result
    assert isinstance(image, RenderedImage) and isinstance(data, RenderedData)
    assert data.value == expected[1].value  # type: ignore[union-attr]
    assert abs(data.value["width"] - room.width) <= 0.03 * room.width
