"""The tasks this engine runs without a model, as the preview engine does (tracing is not AI)."""

from __future__ import annotations

from roomrender.canonical.models import Task
from roomrender.engines.base import BatchCanceled, BatchContext, EngineJob, JobResult
from roomrender.engines.vectorizing import vectorize

NO_MODEL_TASKS = frozenset({Task.vectorize})


def run_without_models(batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
    results: list[JobResult] = []
    for job in batch:
        try:
            results.append([vectorize(job.image)])
        except BatchCanceled:
            raise
        except Exception as failure:
            results.append(failure)
        context.progress([job.job_id], 1.0)
    return results
