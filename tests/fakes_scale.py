"""A fast fake engine for queue and scale tests: fixed cost per image (sleep), tiny outputs.

Env: ROOMRENDER_FAKE_SECONDS_PER_IMAGE (default 0) is the cost of one image;
ROOMRENDER_FAKE_LOG, when set, is a file each run appends `start|done <job id> <pid> <time>`
lines to (one write per line, O_APPEND, so processes can share it).
"""

from __future__ import annotations

import os
import time
import uuid

from PIL import Image
from sqlalchemy import insert

from roomrender.canonical.models import REQUEST_VERSION, GenerationRequest, JobStatus, Task
from roomrender.config import Settings
from roomrender.db.tables import jobs
from roomrender.engines.base import BatchContext, EngineJob, JobResult, RenderedImage
from roomrender.services import Services


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

    def warm_up(self) -> None:
        return None

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


def bulk_enqueue(services: Services, owner_id: str, request: GenerationRequest, count: int,
                 *, chunk: int = 500) -> list[str]:
    """Queue `count` copies of a request (no image inputs) in a few INSERTs, the rows
    JobService.submit would write (credits are not charged): load tests need thousands of jobs
    faster than one submit at a time."""
    now = time.time()
    base = dict(
        owner_id=owner_id, dialect="native", task=request.task.value,
        status=JobStatus.queued.value, engine=services.engine.name,
        batch_key=services.engine.batch_key(request, request.width, request.height),
        request=request.model_dump(mode="json"), cost=request.n, priority=request.priority,
        progress=0.0, attempts=0, max_attempts=services.settings.max_attempts,
        cancel_requested=False, request_version=REQUEST_VERSION, updated_at=now,
    )
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with services.db.begin() as connection:
        for start in range(0, count, chunk):
            connection.execute(insert(jobs), [
                {**base, "id": job_id, "created_at": now + (start + offset) * 1e-6}
                for offset, job_id in enumerate(ids[start:start + chunk])])
    return ids
