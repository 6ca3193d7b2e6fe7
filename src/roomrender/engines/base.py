"""What an engine is: it turns a batch of canonical inputs into images, and says what it can do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image

from roomrender.canonical.models import GenerationRequest, Task


class BatchCanceled(Exception):
    """Raised inside an engine when every job of its batch has been canceled."""


@dataclass
class EngineJob:
    """One job of a batch: its request and its input images, decoded, by field name
    (`image`, `mask`, `reference_image`, `extra_images.0`, ...)."""

    job_id: str
    request: GenerationRequest
    images: dict[str, Image.Image] = field(default_factory=dict)

    @property
    def image(self) -> Image.Image:
        return self.images["image"]

    @property
    def mask(self) -> Image.Image | None:
        return self.images.get("mask")


@dataclass
class RenderedImage:
    image: Image.Image
    # A segment's name, for segmentation masks.
    label: str | None = None


JobResult = list[RenderedImage] | Exception


class BatchContext:
    """The engine's line back to the worker: progress per job, cancellation per step, and live
    previews (a small image of a job's picture forming; None: nobody takes them)."""

    def __init__(
        self,
        report: Callable[[str, float], None],
        is_canceled: Callable[[str], bool],
        preview: Callable[[str, Image.Image], None] | None = None,
    ) -> None:
        self._report = report
        self._is_canceled = is_canceled
        self._preview = preview

    @property
    def wants_previews(self) -> bool:
        return self._preview is not None

    def preview(self, job_id: str, image: Image.Image) -> None:
        """The job's picture as it stands now; must not block (the engine calls it mid-run)."""
        if self._preview is not None:
            self._preview(job_id, image)

    def progress(self, job_ids: list[str], fraction: float) -> None:
        """Report `fraction` (0..1) done for these jobs; raise BatchCanceled if all are canceled."""
        for job_id in job_ids:
            self._report(job_id, max(0.0, min(1.0, fraction)))
        if job_ids and all(self._is_canceled(job_id) for job_id in job_ids):
            raise BatchCanceled()

    def is_canceled(self, job_id: str) -> bool:
        return self._is_canceled(job_id)


@runtime_checkable
class Engine(Protocol):
    name: str
    # The most images (sum of `n`) one batch may hold.
    max_batch_images: int

    def supported_tasks(self) -> frozenset[Task]: ...

    def validate(self, request: GenerationRequest) -> None:
        """Raise Unsupported / InvalidRequest at submit time for what this engine cannot do."""
        ...

    def batch_key(self, request: GenerationRequest, width: int | None, height: int | None) -> str:
        """Jobs with equal keys may share one `generate` call."""
        ...

    def generate(self, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        """One result per job, in order: its images, or the exception that failed it alone."""
        ...
