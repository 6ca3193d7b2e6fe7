"""The tasks this engine runs without a model, as the preview engine does: tracing and geometry
are not AI (vectorize: engines/vectorizing.py; measure: engines/measuring.py)."""

from __future__ import annotations

from roomrender.canonical.models import Task
from roomrender.engines.base import BatchCanceled, BatchContext, EngineJob, JobResult
from roomrender.engines.measuring import GEOMETRY_TASKS, measured
from roomrender.engines.vectorizing import vectorize

NO_MODEL_TASKS = frozenset({Task.vectorize}) | GEOMETRY_TASKS


def run_without_models(batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
    results: list[JobResult] = []
    for job in batch:
        try:
            if job.request.task in GEOMETRY_TASKS:
                results.append(measured(job.request, job.image))
            else:
                results.append([vectorize(job.image)])
        except BatchCanceled:
            raise
        except Exception as failure:
            results.append(failure)
        context.progress([job.job_id], 1.0)
    return results
