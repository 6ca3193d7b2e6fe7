"""What the worker stores for an engine's artifact: its files, each with its content type (the
artifact's own first, then a video's poster frame), and the output record the job keeps."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from PIL import Image

from roomrender.canonical.artifacts import CONTENT_TYPES, ArtifactKind
from roomrender.engines.base import (
    Artifact,
    RenderedData,
    RenderedImage,
    RenderedMesh,
    RenderedText,
    RenderedVector,
    RenderedVideo,
)
from roomrender.storage import new_key
from roomrender.storage.files import NewFile

IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
OUTPUT_PREFIX = "out-"


@dataclass(frozen=True)
class ArtifactFiles:
    files: list[NewFile]
    # The output record the job's row keeps (jobs/rows.py reads it back).
    record: dict[str, Any]

    @property
    def keys(self) -> list[str]:
        return [new.key for new in self.files]


def encode_image(image: Image.Image, output_format: str) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if output_format == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=92)
    elif output_format == "webp":
        image.save(buffer, format="WEBP", quality=92)
    else:
        image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue(), IMAGE_TYPES[output_format]


def files_for(artifact: Artifact, output_format: str) -> ArtifactFiles:
    """The files and record of one artifact; images in `output_format` (png, jpeg, webp), a
    labelled image (a mask, a control map) always in PNG."""
    if isinstance(artifact, RenderedImage):
        data, content_type = encode_image(artifact.image, "png" if artifact.label is not None else output_format)
        return _single(artifact, data, content_type, artifact.image.width, artifact.image.height)
    if isinstance(artifact, RenderedVideo):
        return _video(artifact)
    if isinstance(artifact, RenderedMesh):
        return _single(artifact, artifact.glb)
    if isinstance(artifact, RenderedVector):
        return _single(artifact, artifact.svg.encode("utf-8"), width=artifact.width,
                       height=artifact.height)
    if isinstance(artifact, RenderedData):
        return _single(artifact, json.dumps(artifact.value, ensure_ascii=False).encode("utf-8"))
    if isinstance(artifact, RenderedText):
        return _single(artifact, artifact.text.encode("utf-8"))
    raise TypeError(f"not an artifact: {type(artifact).__name__}")


def _default_type(kind: ArtifactKind) -> str:
    return CONTENT_TYPES[kind][0]


def _record(artifact: Artifact, new: NewFile) -> dict[str, Any]:
    return {"key": new.key, "kind": artifact.kind.value, "content_type": new.content_type,
            "size_bytes": new.size, "width": new.width, "height": new.height,
            "label": artifact.label}


def _single(artifact: Artifact, data: bytes, content_type: str | None = None,
            width: int | None = None, height: int | None = None) -> ArtifactFiles:
    content_type = content_type or _default_type(artifact.kind)
    new = NewFile(new_key(content_type, prefix=OUTPUT_PREFIX), data, content_type, width, height)
    return ArtifactFiles([new], _record(artifact, new))


def _video(video: RenderedVideo) -> ArtifactFiles:
    content_type = _default_type(ArtifactKind.video)
    new = NewFile(new_key(content_type, prefix=OUTPUT_PREFIX), video.path, content_type,
                  video.width, video.height)
    poster_data, poster_type = encode_image(video.poster, "jpeg")
    poster = NewFile(new_key(poster_type, prefix=OUTPUT_PREFIX), poster_data, poster_type,
                     video.poster.width, video.poster.height)
    record = _record(video, new) | {"duration_seconds": video.duration_seconds, "fps": video.fps,
                                    "poster_key": poster.key}
    return ArtifactFiles([new, poster], record)

