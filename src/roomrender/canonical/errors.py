"""Canonical errors. They name what went wrong; each dialect's renderer picks the wire shape and
the HTTP status (`roomrender.api.errors.http_status` for the native one)."""

from __future__ import annotations

from typing import Any


class RoomrenderError(Exception):
    """An error a client caused or must be told about."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        # Messages quote what the client sent: a lone surrogate in it could not be encoded.
        message = message.encode("utf-8", "replace").decode("utf-8")
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidRequest(RoomrenderError):
    code = "invalid_request"


class InvalidImage(InvalidRequest):
    code = "invalid_image"


class ImageTooLarge(InvalidImage):
    code = "image_too_large"


class UrlRefused(InvalidRequest):
    code = "url_refused"


class FetchFailed(InvalidRequest):
    code = "fetch_failed"


class Unauthorized(RoomrenderError):
    code = "unauthorized"


class NotFound(RoomrenderError):
    code = "not_found"


class Forbidden(RoomrenderError):
    """The caller may see the object but not do this to it (a team member's role)."""

    code = "forbidden"


class InsufficientCredits(RoomrenderError):
    code = "insufficient_credits"


class Unsupported(RoomrenderError):
    """The task or option exists but this server (its engine) cannot do it."""

    code = "not_supported"


class Conflict(RoomrenderError):
    code = "conflict"


class JobNotCancelable(Conflict):
    code = "not_cancelable"


class ServerFault(RoomrenderError):
    """Something broke on the server's side; the client can only retry later."""

    code = "internal"


class BodyTooLarge(InvalidRequest):
    """The request body is larger than the server takes."""

    code = "body_too_large"


class RateLimited(RoomrenderError):
    """The key asks for more than it may at once; `retry_after` says when to ask again."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 1.0, code: str | None = None,
                 details: Any = None) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = max(1, int(retry_after + 0.999))


class Unavailable(ServerFault):
    """The server cannot serve the request for now (storage, database); retry later."""

    code = "unavailable"
    retry_after = 5


class StorageUnavailable(Unavailable):
    """Files cannot be written (a read-only or full disk, an object store that refuses)."""

    code = "storage_unavailable"
