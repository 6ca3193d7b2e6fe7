"""Serving stored files at their unguessable URLs (local storage only; S3 serves its own)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from sqlalchemy import select

from roomrender.db.tables import files
from roomrender.jobs.errors import NotFound
from roomrender.storage import FileMissing, LocalStorage

router = APIRouter(tags=["files"])


@router.get("/files/{key}", summary="A stored input or output file", response_class=FileResponse)
def get_file(request: Request, key: str) -> FileResponse:
    services = request.app.state.services
    storage = services.storage
    if not isinstance(storage, LocalStorage):
        raise NotFound("files are served by the object store")
    with services.db.connect() as connection:
        row = connection.execute(
            select(files.c.content_type, files.c.expires_at).where(files.c.key == key)).first()
    if row is None or (row.expires_at is not None and row.expires_at <= time.time()):
        raise NotFound("no such file, or it has expired")
    try:
        path = storage.path(key)
    except FileMissing as missing:
        raise NotFound("no such file, or it has expired") from missing
    return FileResponse(path, media_type=row.content_type,
                        headers={"Cache-Control": "private, max-age=86400, immutable"})
