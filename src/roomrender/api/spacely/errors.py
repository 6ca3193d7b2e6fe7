"""Spacely's error shape: `{"error": {"code", "message"}}` with status 400 (anything the client
can fix, insufficient credits included), 401, 429 or 500, the codes Spacely documents."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from roomrender.api.errors import http_status, retry_headers
from roomrender.canonical.errors import RoomrenderError


class SpacelyErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_value"])
    message: str = Field(examples=["spaceStyle: unknown value 'gothic'; accepted: modern, ..."])


class SpacelyError(BaseModel):
    error: SpacelyErrorDetail


def spacely_status(error: RoomrenderError) -> int:
    """Spacely documents 400, 401, 500 and, past its rate limit, 429: every other client error
    is a 400."""
    status = http_status(error)
    if status in (401, 429):
        return status
    if status >= 500:
        return 500
    return 400


def spacely_error(error: RoomrenderError) -> Response:
    return JSONResponse({"error": {"code": error.code, "message": error.message}},
                        status_code=spacely_status(error), headers=retry_headers(error))


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": SpacelyError, "description": "Invalid request: a missing or unknown field value "
          "(the message lists the accepted values), an image URL that cannot be fetched or is not "
          "an image, a task this server's engine does not support, insufficient credits "
          "(code `insufficient_credits`), or an unknown refId"},
    401: {"model": SpacelyError, "description": "X-API-KEY missing or invalid"},
    429: {"model": SpacelyError, "description": "Past the key's rate limit (`Retry-After` says "
          "when to retry), or as many jobs in flight as the key may have"},
    500: {"model": SpacelyError, "description": "Server error"},
    # Stands in for FastAPI's 422, which this dialect never sends.
    "default": {"model": SpacelyError, "description": "Every error has this shape; its status is "
                "400, 401, 429 or 500 as listed"},
}
