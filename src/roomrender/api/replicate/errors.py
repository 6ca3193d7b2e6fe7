"""Replicate's errors on the wire: problem details (`{"title", "detail", "status"}`, with
`invalid_fields` for an input its model's schema refuses); what a client can fix in a request's
content is a 422."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from roomrender.api.errors import HttpError, http_status, retry_headers
from roomrender.api.replicate.models import InputInvalid
from roomrender.canonical.errors import (
    ImageTooLarge,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    RoomrenderError,
    Unauthorized,
    Unsupported,
)


class VersionInvalid(HttpError):
    code = "invalid_version"
    status = 422


class BadRequest(HttpError):
    code = "bad_request"
    status = 400


TITLES = {400: "Bad request", 401: "Unauthenticated", 402: "Insufficient credit",
          403: "Forbidden", 404: "Not found", 405: "Method not allowed", 409: "Conflict",
          413: "Content Too Large", 422: "Unprocessable Entity", 429: "Request was throttled",
          500: "Internal server error"}
TITLES_BY_CODE = {"input_invalid": "Input validation failed",
                  "invalid_version": "Invalid version or not permitted"}


class ProblemOut(BaseModel):
    """Replicate's error body (problem details)."""

    title: str
    detail: str
    status: int


def replicate_responses() -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of every Replicate route: the error statuses they send, as problems."""
    described = {400: "The body is not JSON, or not an object", 401: "Token missing or not valid",
                 402: "Not enough credits", 404: "No such prediction, model, version or file",
                 413: "The request body or an image is too large",
                 422: "Input or version not valid, or a task this server's engine cannot run",
                 429: "Past the token's rate limit (`Retry-After`)", 500: "Server error",
                 503: "Storage or database unavailable for now (`Retry-After`)"}
    return {status: {"model": ProblemOut, "description": text} for status, text in described.items()}


def replicate_status(error: RoomrenderError) -> int:
    """Replicate answers what a client can fix in a request's content with 422."""
    if isinstance(error, HttpError):
        return error.status
    if isinstance(error, Unauthorized):
        return 401
    if isinstance(error, InsufficientCredits):
        return 402
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, ImageTooLarge):
        return 413
    if isinstance(error, InvalidRequest | Unsupported):
        return 422
    return http_status(error)


def replicate_error(error: RoomrenderError) -> Response:
    status = replicate_status(error)
    title = TITLES_BY_CODE.get(error.code)
    if title is None and isinstance(error, Unsupported):
        title = "Not supported by this server"
    body: dict[str, Any] = {"title": title or TITLES.get(status, "Error"), "detail": error.message,
                            "status": status}
    if isinstance(error, InputInvalid):
        body["invalid_fields"] = error.details
    # Throttled or unavailable: when to come back, as Replicate's OpenAPI documents.
    headers = retry_headers(error) | ({"WWW-Authenticate": "Bearer"} if status == 401 else {})
    return JSONResponse(body, status_code=status, headers=headers,
                        media_type="application/problem+json")
