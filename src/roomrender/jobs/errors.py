"""Canonical errors. Each dialect maps them to its own wire shape and status code."""

from __future__ import annotations

from typing import Any


class RoomrenderError(Exception):
    """An error a client caused or must be told about; `status` is the HTTP default."""

    code: str = "error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidRequest(RoomrenderError):
    code = "invalid_request"
    status = 400


class InvalidImage(InvalidRequest):
    code = "invalid_image"


class ImageTooLarge(InvalidImage):
    code = "image_too_large"
    status = 413


class UrlRefused(InvalidRequest):
    code = "url_refused"


class FetchFailed(InvalidRequest):
    code = "fetch_failed"


class Unauthorized(RoomrenderError):
    code = "unauthorized"
    status = 401


class NotFound(RoomrenderError):
    code = "not_found"
    status = 404


class InsufficientCredits(RoomrenderError):
    code = "insufficient_credits"
    status = 402


class Unsupported(RoomrenderError):
    """The task or option exists but this server (its engine) cannot do it."""

    code = "not_supported"
    status = 400


class Conflict(RoomrenderError):
    code = "conflict"
    status = 409


class JobNotCancelable(Conflict):
    code = "not_cancelable"
