"""Errors on the wire. Each dialect renders canonical errors in its own shape, chosen by path."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from roomrender.jobs.errors import InvalidRequest, NotFound, RoomrenderError, Unauthorized

log = logging.getLogger("roomrender.api")

ErrorRenderer = Callable[[RoomrenderError], Response]


def native_error(error: RoomrenderError) -> Response:
    body: dict[str, object] = {"code": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else None
    return JSONResponse({"error": body}, status_code=error.status, headers=headers)


def describe_validation_errors(errors: list[dict[str, object]]) -> str:
    parts = []
    for item in errors:
        location = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query"))
        parts.append(f"{location}: {item.get('msg')}" if location else str(item.get("msg")))
    return "; ".join(parts) or "the request is not valid"


class DialectErrors:
    """Maps a path prefix to the renderer of its dialect; the native shape is the default."""

    def __init__(self) -> None:
        self._renderers: list[tuple[str, ErrorRenderer]] = []

    def register(self, prefix: str, renderer: ErrorRenderer) -> None:
        self._renderers.append((prefix, renderer))
        self._renderers.sort(key=lambda item: len(item[0]), reverse=True)

    def render(self, request: Request, error: RoomrenderError) -> Response:
        path = request.url.path
        for prefix, renderer in self._renderers:
            if path.startswith(prefix):
                return renderer(error)
        return native_error(error)


def install_error_handlers(app: FastAPI, dialects: DialectErrors) -> None:
    @app.exception_handler(RoomrenderError)
    async def _roomrender_error(request: Request, error: RoomrenderError) -> Response:
        return dialects.render(request, error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> Response:
        errors = [
            {key: value for key, value in item.items() if key in ("loc", "msg", "type")}
            for item in error.errors()
        ]
        invalid = InvalidRequest(describe_validation_errors(errors), code="invalid_request",
                                 details=errors)
        return dialects.render(request, invalid)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404:
            wire: RoomrenderError = NotFound(f"no route {request.url.path}")
        else:
            wire = RoomrenderError(str(error.detail), code=f"http_{error.status_code}")
            wire.status = error.status_code
        response = dialects.render(request, wire)
        if error.headers:
            response.headers.update(error.headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        wire = RoomrenderError("internal error; the server log has the details", code="internal")
        wire.status = 500
        return dialects.render(request, wire)
