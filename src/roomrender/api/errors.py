"""Errors on the wire. Each dialect renders canonical errors in its own shape, chosen by path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from roomrender.api.deps import describe_json_error, describe_validation_errors, json_error_of
from roomrender.canonical.errors import (
    BodyTooLarge,
    Conflict,
    Forbidden,
    ImageTooLarge,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    RateLimited,
    RoomrenderError,
    ServerFault,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger("roomrender.api")

ErrorRenderer = Callable[[RoomrenderError], Response]


class HttpError(RoomrenderError):
    """An error that exists only on the wire (no route, a method not allowed, a refused signed
    URL): it carries its own HTTP status."""

    status: int = 400

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 details: Any = None) -> None:
        super().__init__(message, code=code, details=details)
        if status is not None:
            self.status = status


# The HTTP status of each canonical error; the most specific class listed wins, others are 400.
STATUSES: dict[type[RoomrenderError], int] = {
    Unauthorized: 401,
    InsufficientCredits: 402,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    ImageTooLarge: 413,
    BodyTooLarge: 413,
    RateLimited: 429,
    ServerFault: 500,
    Unavailable: 503,
}


def retry_headers(error: RoomrenderError) -> dict[str, str]:
    """`Retry-After` for errors that pass (a rate limit, an unavailable store), else none."""
    if isinstance(error, RateLimited):
        return {"Retry-After": str(error.retry_after)}
    if isinstance(error, Unavailable):
        return {"Retry-After": str(error.retry_after)}
    return {}


class NativeErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_request"])
    message: str
    details: Any = None


class NativeError(BaseModel):
    """Every native error: `{"error": {"code", "message", "details"?}}`."""

    error: NativeErrorDetail


def native_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for native routes: the error statuses they send, in the native shape."""
    described = {
        400: "Invalid request: a field's value, a URL refused or that could not be fetched, "
             "an image that is not one",
        401: "API key missing, not valid or revoked",
        402: "Not enough credits",
        403: "Not allowed to the caller's role in its team",
        404: "No such job, file or route",
        409: "Idempotency-Key reused with another request, or the job cannot be canceled",
        413: "The request body or an image is too large",
        429: "Past the key's rate limit, its jobs in flight or image fetches (`Retry-After`)",
        500: "Server error",
        503: "Storage or database unavailable for now (`Retry-After`)",
    }
    return {status: {"model": NativeError, "description": described[status]}
            for status in statuses}


# Every route: a body too large, a key past its rate, a server fault.
COMMON_STATUSES = (400, 413, 429, 500, 503)


def honest_openapi(app: FastAPI) -> None:
    """The OpenAPI schema without FastAPI's 422, which no route sends: a request that fails
    validation is answered in its dialect's shape and status, as each route documents."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
                # FastAPI's own 422 only: a dialect that does answer 422 (Replicate) documents it.
                if "HTTPValidationError" in str(responses.get("422", "")):
                    responses.pop("422")
        schemas = schema.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def http_status(error: RoomrenderError) -> int:
    """The status the native API answers `error` with (dialects narrow it to their own)."""
    if isinstance(error, HttpError):
        return error.status
    for cls in type(error).__mro__:
        if cls in STATUSES:
            return STATUSES[cls]
    return 400


def native_error(error: RoomrenderError) -> Response:
    body: dict[str, object] = {"code": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else {}
    return JSONResponse({"error": body}, status_code=http_status(error),
                        headers=headers | retry_headers(error))


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
        broken = next((found for item in error.errors() if (found := json_error_of(item, error.body))), None)
        message = describe_json_error(broken) if broken else describe_validation_errors(errors)
        invalid = InvalidRequest(message, code="invalid_request", details=errors)
        return dialects.render(request, invalid)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404:
            wire: RoomrenderError = NotFound(f"no route {request.url.path}")
        else:
            wire = HttpError(str(error.detail), status=error.status_code,
                             code=f"http_{error.status_code}")
        response = dialects.render(request, wire)
        if error.headers:
            response.headers.update(error.headers)
        return response

    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, error: OperationalError) -> Response:
        # A full disk under SQLite, a database that went away: the request may be retried.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    error.orig)
        wire = Unavailable("the database cannot be reached or written now; retry later",
                           code="database_unavailable")
        return dialects.render(request, wire)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        wire = ServerFault("internal error; the server log has the details")
        return dialects.render(request, wire)
