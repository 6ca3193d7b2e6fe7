"""Fake engines for tests: they run every canonical task with plain, predictable pixels."""

from __future__ import annotations

from PIL import Image

from roomrender.config import Settings
from roomrender.engines.base import BatchContext, EngineJob, JobResult, RenderedImage
from roomrender.jobs.models import GenerationRequest, Task

SEGMENT_LABELS = ("wall", "floor", "ceiling")
# A prompt that makes the fake engine fail the job, to test failure answers.
FAIL_PROMPT = "please fail"


class AllTasksEngine:
    """Supports every task; answers images of the input's size (a flat colour per task), and for
    `segment` one mask per label (the prompt's words, or wall/floor/ceiling)."""

    name = "alltasks"
    max_batch_images = 8

    def __init__(self) -> None:
        self.seen: list[GenerationRequest] = []

    def supported_tasks(self) -> frozenset[Task]:
        return frozenset(Task)

    def validate(self, request: GenerationRequest) -> None:
        return None

    def batch_key(self, request: GenerationRequest, width: int | None, height: int | None) -> str:
        return f"alltasks:{request.task.value}:{width}x{height}"

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        results: list[JobResult] = []
        for job in batch:
            self.seen.append(job.request)
            if job.request.prompt == FAIL_PROMPT:
                results.append(RuntimeError("the fake engine was asked to fail"))
                continue
            size = job.image.size if "image" in job.images else (64, 64)
            if job.request.task == Task.segment:
                labels = job.request.prompt.split(",") if job.request.prompt else SEGMENT_LABELS
                results.append([
                    RenderedImage(Image.new("L", size, 255 if index == 0 else 0), label=label.strip())
                    for index, label in enumerate(labels)
                ])
            else:
                shade = (40 * list(Task).index(job.request.task)) % 256
                results.append([RenderedImage(Image.new("RGB", size, (shade, 128, 200)))
                                for _ in range(job.request.n)])
            context.progress([job.job_id], 1.0)
        return results


def all_tasks_engine(settings: Settings) -> AllTasksEngine:
    """For ROOMRENDER_ENGINE=tests.fakes:all_tasks_engine."""
    return AllTasksEngine()
