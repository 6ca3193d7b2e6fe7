"""A drawing from words (vectorize with a prompt, Luw's `fluwvector`): the picture painted first
as text_to_image (the request's image, if any, its guide), then traced into SVG like any
picture (engines/vectorizing.py)."""

from __future__ import annotations

from roomrender.canonical.models import GenerationRequest, Task
from roomrender.engines.base import EngineJob, JobResult, RenderedImage
from roomrender.engines.vectorizing import vectorize


def paints_first(request: GenerationRequest) -> bool:
    """A vectorize with words: there is a picture to paint before the tracing."""
    return request.task == Task.vectorize and bool(request.prompt)


def painting(request: GenerationRequest) -> GenerationRequest:
    """The picture to paint: one text_to_image of the same words, shape, seed and guide."""
    return request.model_copy(update={"task": Task.text_to_image, "n": 1})


def painting_job(job: EngineJob) -> EngineJob:
    return EngineJob(job.job_id, painting(job.request), job.images)


def traced(painted: list[JobResult]) -> list[JobResult]:
    """Each painted picture traced into its drawing (a failure stays the job's failure)."""
    results: list[JobResult] = []
    for result in painted:
        if isinstance(result, Exception):
            results.append(result)
            continue
        pictures = [item for item in result if isinstance(item, RenderedImage)]
        try:
            results.append([vectorize(pictures[-1].image)])
        except Exception as failure:
            results.append(failure)
    return results
