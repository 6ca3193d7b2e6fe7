"""What an engine is: it turns a batch of canonical inputs into artifacts (images, videos,
meshes, drawings, data, text), and says what it can do."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from PIL import Image

from roomrender.canonical.artifacts import ArtifactKind
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


# What an engine returns per job. Each artifact may carry a label: what it is among the job's
# outputs (a segment's name, a control map's name).


@dataclass
class RenderedImage:
    """A picture, stored in the request's output_format (PNG when it carries a label)."""

    image: Image.Image
    label: str | None = None
    kind: ClassVar[ArtifactKind] = ArtifactKind.image


@dataclass
class RenderedVideo:
    """An MP4 the engine has written to `path` (an encoder fed frame by frame, so a long video
    never sits in memory), with a still image to show before it plays. The file becomes the
    worker's: it stores it, then deletes it."""

    path: Path
    poster: Image.Image
    fps: float
    duration_seconds: float
    width: int
    height: int
    label: str | None = None
    kind: ClassVar[ArtifactKind] = ArtifactKind.video


@dataclass
class RenderedMesh:
    """A 3D model as GLB (binary glTF 2.0)."""

    glb: bytes
    label: str | None = None
    kind: ClassVar[ArtifactKind] = ArtifactKind.mesh


@dataclass
class RenderedVector:
    """A vector drawing as SVG text (served so that any script in it cannot run)."""

    svg: str
    width: int | None = None
    height: int | None = None
    label: str | None = None
    kind: ClassVar[ArtifactKind] = ArtifactKind.vector


@dataclass
class RenderedData:
    """A JSON-able value: measurements, boxes, a room's layout."""

    value: Any
    label: str | None = None
    kind: ClassVar[ArtifactKind] = ArtifactKind.data


@dataclass
class RenderedText:
    text: str
    label: str | None = None
    kind: ClassVar[ArtifactKind] = ArtifactKind.text


Artifact = RenderedImage | RenderedVideo | RenderedMesh | RenderedVector | RenderedData | RenderedText
JobResult = Sequence[Artifact] | Exception


def discard_artifact_files(results: Sequence[JobResult]) -> None:
    """Delete the files engines wrote for these results (videos), once they are stored or
    will never be."""
    for result in results:
        if isinstance(result, Exception):
            continue
        for artifact in result:
            if isinstance(artifact, RenderedVideo):
                artifact.path.unlink(missing_ok=True)


class BatchContext:
    """The engine's line back to the worker: progress per job, cancellation per step, live
    previews (a small image of a job's picture forming; None: nobody takes them), and a text
    job's answer so far (`partial_text`; None: nobody takes it)."""

    def __init__(
        self,
        report: Callable[[str, float], None],
        is_canceled: Callable[[str], bool],
        preview: Callable[[str, Image.Image], None] | None = None,
        text: Callable[[str, str], None] | None = None,
    ) -> None:
        self._report = report
        self._is_canceled = is_canceled
        self._preview = preview
        self._text = text

    @property
    def wants_previews(self) -> bool:
        return self._preview is not None

    def preview(self, job_id: str, image: Image.Image) -> None:
        """The job's picture as it stands now; must not block (the engine calls it mid-run)."""
        if self._preview is not None:
            self._preview(job_id, image)

    def partial_text(self, job_id: str, text_so_far: str) -> None:
        """The job's answer as it stands now, each call extending the last one's text (a
        growing prefix of the final answer); must not block (the worker throttles it)."""
        if self._text is not None:
            self._text(job_id, text_so_far)

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
        """One result per job, in order: its artifacts, or the exception that failed it alone."""
        ...

    def warm_up(self) -> object:
        """Load (and compile) what the first request would otherwise wait for; called once before
        a worker serves. What it returns (timings, for instance) is the engine's own affair."""
        ...
