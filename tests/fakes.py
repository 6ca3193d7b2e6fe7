"""Test engines: they run every canonical task with no model, so dialects can be tested to success."""

from __future__ import annotations

import time

from PIL import Image

from roomrender.canonical.models import GenerationRequest, Task
from roomrender.config import Settings
from roomrender.engines.base import BatchContext, EngineJob, JobResult, RenderedImage

SEGMENT_LABELS = ("wall", "floor", "ceiling")
# A prompt that makes the fake engine fail the job, to test failure answers.
FAIL_PROMPT = "please fail"
# One flat colour per variant, so a test can tell the outputs apart by their pixels.
VARIANT_COLORS = [(200, 60, 60), (60, 200, 60), (60, 60, 200), (200, 200, 60),
                  (200, 60, 200), (60, 200, 200), (120, 120, 120), (240, 240, 240)]
TEXT_TO_IMAGE_SIZE = (256, 192)


class AllTasksEngine:
    """Supports every task; answers flat coloured images of the input's size (or the request's
    width/height, or 256x192 for text_to_image), and for `segment` one mask per label (the
    prompt's words, or wall/floor/ceiling). `seconds_per_image` slows it down so a poller can see
    a job running, with its progress. Records every request it is given in `seen`."""

    name = "all-tasks"
    max_batch_images = 8

    def __init__(self, seconds_per_image: float = 0.0) -> None:
        self.seconds_per_image = seconds_per_image
        self.seen: list[GenerationRequest] = []

    def supported_tasks(self) -> frozenset[Task]:
        return frozenset(Task)

    def validate(self, request: GenerationRequest) -> None:
        return None

    def batch_key(self, request: GenerationRequest, width: int | None, height: int | None) -> str:
        return f"{self.name}:{request.task.value}:{width}x{height}"

    def warm_up(self) -> None:
        return None

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        results: list[JobResult] = []
        for job in batch:
            self.seen.append(job.request)
            if job.request.prompt == FAIL_PROMPT:
                results.append(RuntimeError("the fake engine was asked to fail"))
                continue
            size = self._size(job)
            if job.request.task == Task.segment:
                labels = job.request.prompt.split(",") if job.request.prompt else SEGMENT_LABELS
                results.append([
                    RenderedImage(Image.new("L", size, 255 if index == 0 else 0), label=label.strip())
                    for index, label in enumerate(labels)
                ])
                context.progress([job.job_id], 1.0)
                continue
            images = []
            for variant in range(job.request.n):
                if self.seconds_per_image:
                    time.sleep(self.seconds_per_image)
                context.progress([job.job_id], (variant + 1) / job.request.n)
                color = VARIANT_COLORS[variant % len(VARIANT_COLORS)]
                images.append(RenderedImage(Image.new("RGB", size, color)))
            results.append(images)
        return results

    @staticmethod
    def _size(job: EngineJob) -> tuple[int, int]:
        if "image" in job.images:
            return job.image.size
        request = job.request
        return (request.width or TEXT_TO_IMAGE_SIZE[0], request.height or TEXT_TO_IMAGE_SIZE[1])


def all_tasks_engine(settings: Settings) -> AllTasksEngine:
    """Factory for ROOMRENDER_ENGINE=tests.fakes:all_tasks_engine."""
    return AllTasksEngine()
