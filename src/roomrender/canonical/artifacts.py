"""What an engine hands back: artifacts, each of one kind, and how each kind is stored and served."""

from __future__ import annotations

from enum import StrEnum


class ArtifactKind(StrEnum):
    image = "image"    # PNG, JPEG or WebP
    video = "video"    # MP4 (H.264, yuv420p, faststart) with a poster frame
    mesh = "mesh"      # GLB (binary glTF 2.0)
    vector = "vector"  # SVG
    data = "data"      # JSON: masks, measurements
    text = "text"      # plain text (UTF-8)


# The content types each kind may be stored as, the first its default.
CONTENT_TYPES: dict[ArtifactKind, tuple[str, ...]] = {
    ArtifactKind.image: ("image/png", "image/jpeg", "image/webp"),
    ArtifactKind.video: ("video/mp4",),
    ArtifactKind.mesh: ("model/gltf-binary",),
    ArtifactKind.vector: ("image/svg+xml",),
    ArtifactKind.data: ("application/json",),
    ArtifactKind.text: ("text/plain; charset=utf-8",),
}

# File extensions of stored keys, by content type.
EXTENSIONS: dict[str, str] = {
    "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "video/mp4": "mp4",
    "model/gltf-binary": "glb", "image/svg+xml": "svg", "application/json": "json",
    "text/plain; charset=utf-8": "txt",
}


def kind_of(content_type: str) -> ArtifactKind:
    """The kind a stored content type belongs to (rows written before kinds existed are images)."""
    for kind, types in CONTENT_TYPES.items():
        if content_type in types:
            return kind
    return ArtifactKind.image
