"""Serving stored files at their unguessable URLs (local storage only; S3 serves its own)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from roomrender.api.deps import services
from roomrender.api.errors import COMMON_STATUSES, native_responses
from roomrender.canonical.errors import NotFound
from roomrender.storage import FileMissing, LocalStorage

router = APIRouter(tags=["files"], responses=native_responses(404, *COMMON_STATUSES))


@router.get("/files/{key}", summary="A stored input or output file", response_class=FileResponse)
def get_file(request: Request, key: str) -> FileResponse:
    store = services(request).files
    storage = store.storage
    if not isinstance(storage, LocalStorage):
        raise NotFound("files are served by the object store")
    stored = store.lookup(key)
    if stored is None or stored.expired():
        raise NotFound("no such file, or it has expired")
    try:
        path = storage.path(key)
    except FileMissing as missing:
        raise NotFound("no such file, or it has expired") from missing
    return FileResponse(path, media_type=stored.content_type,
                        headers={"Cache-Control": "private, max-age=86400, immutable"})
