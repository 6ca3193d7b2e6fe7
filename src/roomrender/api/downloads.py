"""Serving stored files at their unguessable URLs, when the storage keeps them on this machine
(an object store serves its own). Range requests are answered (206), so a video can be seeked.

Every answer says `nosniff`, so a browser takes the stored content type at its word; content
that could run script (SVG, anything not a passive image, video, model, JSON or plain text) is
served sandboxed, so a script inside it never runs with this origin's rights."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roomrender.api.deps import services
from roomrender.api.errors import COMMON_STATUSES, native_responses
from roomrender.canonical.errors import NotFound
from roomrender.storage import FileMissing



class NoSniffRoute(APIRoute):
    """A route whose every answer says `nosniff`, its error answers too (they are rendered
    inside the route's own ASGI app)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = _with_nosniff(self.app)


def _with_nosniff(app: ASGIApp) -> ASGIApp:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).setdefault("X-Content-Type-Options", "nosniff")
            await send(message)

        await app(scope, receive, send_nosniff)

    return answer


router = APIRouter(tags=["files"], responses=native_responses(404, *COMMON_STATUSES),
                   route_class=NoSniffRoute)

PASSIVE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif", "video/mp4",
                           "model/gltf-binary", "application/json", "text/plain; charset=utf-8",
                           "text/plain"})
SANDBOX = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def sandboxed(content_type: str) -> dict[str, str]:
    """The Content-Security-Policy that keeps active content from running script."""
    return {} if content_type.lower() in PASSIVE_TYPES else {"Content-Security-Policy": SANDBOX}


@router.get("/files/{key}", summary="A stored input or output file (Range requests answered)",
            response_class=FileResponse)
def get_file(request: Request, key: str) -> FileResponse:
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
    return FileResponse(path, media_type=stored.content_type,
                        headers={"Cache-Control": "private, max-age=86400, immutable",
                                 **sandboxed(stored.content_type)})
