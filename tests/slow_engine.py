"""Engines for tests: the preview engine slowed down into steps, and one that always fails."""

from __future__ import annotations

import os
import time

from roomrender.config import Settings
from roomrender.engines.base import BatchContext, EngineJob, JobResult
from roomrender.engines.preview.engine import PreviewEngine


class SlowPreviewEngine(PreviewEngine):
    """The preview engine, after `steps` sleeps of `step_seconds` that report progress and can be
    canceled between steps. Records each batch it is given."""

    def __init__(self, steps: int = 10, step_seconds: float = 0.05) -> None:
        self.steps = steps
        self.step_seconds = step_seconds
        self.batches: list[list[str]] = []
        # The steps run so far, over all batches (a canceled batch stops between two).
        self.steps_run = 0

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        self.batches.append([job.job_id for job in batch])
        ids = [job.job_id for job in batch]
        for step in range(self.steps):
            time.sleep(self.step_seconds)
            self.steps_run += 1
            context.progress(ids, (step + 1) / (self.steps + 1))
        return super().generate(batch, context)


class FailingEngine(PreviewEngine):
    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        return [RuntimeError("the model exploded") for _ in batch]


def slow_engine(settings: Settings) -> SlowPreviewEngine:
    """Factory for `ROOMRENDER_ENGINE=tests.slow_engine:slow_engine` in worker subprocesses."""
    return SlowPreviewEngine(steps=int(os.environ.get("SLOW_ENGINE_STEPS", "40")),
                             step_seconds=float(os.environ.get("SLOW_ENGINE_STEP_SECONDS", "0.1")))
