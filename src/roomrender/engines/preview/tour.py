"""The preview engine's room tour: the photo filmed along a camera move (no AI), streamed to the
H.264 encoder frame by frame."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from roomrender.canonical.camera import (
    DEFAULT_CAMERA_MOVE,
    DEFAULT_DURATION_SECONDS,
    DEFAULT_FPS,
    DEFAULT_RESOLUTION,
    frame_count,
    frame_size,
)
from roomrender.engines.base import BatchContext, EngineJob, RenderedVideo
from roomrender.engines.clips import ClipWriter, prefetched
from roomrender.engines.preview.camera_moves import frames


def render_tour(job: EngineJob, context: BatchContext, scratch: Path | None = None) -> RenderedVideo:
    """The job's clip; BatchCanceled from the progress report stops it and deletes the file."""
    request = job.request
    size = frame_size(request.resolution or DEFAULT_RESOLUTION, *job.image.size)
    fps = request.fps or DEFAULT_FPS
    count = frame_count(request.duration or DEFAULT_DURATION_SECONDS, fps)
    poster: Image.Image | None = None
    with ClipWriter(*size, fps, directory=scratch) as clip:
        moving = frames(job.image, request.camera or DEFAULT_CAMERA_MOVE, size, count)
        for index, frame in enumerate(prefetched(moving)):
            if poster is None:
                poster = frame
            clip.write(frame)
            context.progress([job.job_id], (index + 1) / count)
    assert poster is not None
    return RenderedVideo(clip.path, poster, fps=fps, duration_seconds=count / fps,
                         width=size[0], height=size[1])
