"""A fast fake engine for queue and scale tests: fixed cost per image (sleep), tiny outputs.

Env: ROOMRENDER_FAKE_SECONDS_PER_IMAGE (default 0) is the cost of one image;
ROOMRENDER_FAKE_LOG, when set, is a file each run appends `start|done <job id> <pid> <time>`
lines to (one write per line, O_APPEND, so processes can share it).
"""

from __future__ import annotations

import os
import time

from PIL import Image

from roomrender.config import Settings
from roomrender.engines.base import BatchContext, EngineJob, JobResult, RenderedImage
from roomrender.jobs.models import GenerationRequest, Task


class FakeEngine:
    name = "fake"
    max_batch_images = 8

    def __init__(self, seconds_per_image: float = 0.0, log_path: str | None = None) -> None:
        self.seconds_per_image = seconds_per_image
        self.log_path = log_path

    def supported_tasks(self) -> frozenset[Task]:
        return frozenset(Task)

    def validate(self, request: GenerationRequest) -> None:
        return None

    def batch_key(self, request: GenerationRequest, width: int | None, height: int | None) -> str:
        return f"fake:{request.task.value}"

    def _log(self, what: str, batch: list[EngineJob]) -> None:
        if not self.log_path:
            return
        lines = "".join(f"{what} {job.job_id} {os.getpid()} {time.time():.6f}\n" for job in batch)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        self._log("start", batch)
        images = sum(job.request.n for job in batch)
        if self.seconds_per_image:
            time.sleep(self.seconds_per_image * images)
        context.progress([job.job_id for job in batch], 1.0)
        self._log("done", batch)
        return [[RenderedImage(Image.new("RGB", (8, 8), (index * 40 % 255, 90, 160)))
                 for index in range(job.request.n)] for job in batch]


def factory(settings: Settings) -> FakeEngine:
    return FakeEngine(float(os.environ.get("ROOMRENDER_FAKE_SECONDS_PER_IMAGE", "0")),
                      os.environ.get("ROOMRENDER_FAKE_LOG") or None)
