"""The engine of bench/sse.py: the preview engine, with a gate and a fixed run time.

A job with seed 0 is the gate: the worker holds it until the bench writes a line to the FIFO at
$SSE_BENCH_GATE (a blocking read: no CPU while the watchers' idle cost is measured), so the
jobs behind it stay queued. Every other job takes $SSE_BENCH_JOB_MS, in two halves, reporting
progress after the first.

    ROOMRENDER_ENGINE=bench.sse_engine:factory
"""

from __future__ import annotations

import os
import time

from roomrender.config import Settings
from roomrender.engines.base import BatchContext, EngineJob, JobResult
from roomrender.engines.preview.engine import PreviewEngine


class GatedEngine(PreviewEngine):
    def __init__(self, gate: str, job_seconds: float) -> None:
        self.gate = gate
        self.job_seconds = job_seconds

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        ids = [job.job_id for job in batch]
        if any(job.request.seed == 0 for job in batch):
            with open(self.gate) as gate:
                gate.readline()
        else:
            time.sleep(self.job_seconds / 2)
            context.progress(ids, 0.5)
            time.sleep(self.job_seconds / 2)
        return super().generate(batch, context)


def factory(settings: Settings) -> GatedEngine:
    return GatedEngine(os.environ["SSE_BENCH_GATE"],
                       float(os.environ.get("SSE_BENCH_JOB_MS", "40")) / 1000)
