"""Serving stored files at their unguessable URLs, when the storage keeps them on this machine
(an object store serves its own). Range requests are answered (206), so a video can be seeked.

Every answer says `nosniff`, so a browser takes the stored content type at its word; content
that could run script (SVG, anything not a passive image, video, model, JSON or plain text) is
served sandboxed, so a script inside it never runs with this origin's rights."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from roomrender.api.deps import services
from roomrender.api.errors import COMMON_STATUSES, native_error, native_responses
from roomrender.canonical.errors import NotFound
from roomrender.storage import FileMissing

router = APIRouter(tags=["files"], responses=native_responses(404, *COMMON_STATUSES))

PASSIVE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif", "video/mp4",
                           "model/gltf-binary", "application/json", "text/plain; charset=utf-8",
                           "text/plain"})
SANDBOX = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


def sandboxed(content_type: str) -> dict[str, str]:
    """The Content-Security-Policy that keeps active content from running script."""
    return {} if content_type.lower() in PASSIVE_TYPES else {"Content-Security-Policy": SANDBOX}


@router.get("/files/{key}", summary="A stored input or output file (Range requests answered)",
            response_class=FileResponse)
def get_file(request: Request, key: str) -> Response:
    try:
        path, content_type = _stored_file(request, key)
    except NotFound as missing:
        # Answered here rather than raised, so that the error too says nosniff.
        answer = native_error(missing)
        answer.headers.update(NOSNIFF)
        return answer
    return FileResponse(path, media_type=content_type,
                        headers={"Cache-Control": "private, max-age=86400, immutable",
                                 **NOSNIFF, **sandboxed(content_type)})


def _stored_file(request: Request, key: str) -> tuple[Path, str]:
    """The file on disk and its content type; NotFound when it is not served here."""
    store = services(request).files
    try:
        path = store.storage.local_path(key)
    except FileMissing as missing:
        raise NotFound("no such file, or it has expired") from missing
    if path is None:
        raise NotFound("files are served by the object store")
    stored = store.lookup(key)
    if stored is None or stored.expired():
        raise NotFound("no such file, or it has expired")
    return path, stored.content_type
