"""Luw's error shapes: `{"status": false, "error": ...}` and its own bodies for bad credentials
(401) and no credits (402); the statuses Luw answers, other statuses folded into 400 / 500."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response

from roomrender.api.auth import SCHEME_MISSING
from roomrender.api.errors import HttpError, http_status, retry_headers
from roomrender.canonical.errors import InsufficientCredits, RoomrenderError, Unauthorized

# Luw's statuses; its bodies vary (`{"status": false, "error": ...}`, `insert_coin`, ...).
WIRE_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description} for status, description in {
        400: "Invalid request: `{\"status\": false, \"error\": \"...\"}`",
        401: "Wrong credentials or expired token", 402: "Not enough credits (`insert_coin`)",
        403: "A signed URL refused", 404: "No such generation", 405: "Method not allowed",
        410: "A signed URL expired or used", 429: "Past the key's limits (`Retry-After`)",
        500: "Server error (also storage or database unavailable)"}.items()}
AUTH_MESSAGE = "Wrong credentials or expired token"
# Luw answers with these; other statuses of canonical errors are folded into 400 / 500.
WIRE_STATUSES = {400, 401, 402, 403, 404, 405, 410, 429, 500}


class SignedUrlRefused(HttpError):
    code = "signed_url_refused"
    status = 403


class SignedUrlGone(HttpError):
    code = "signed_url_gone"
    status = 410


def luw_error(error: RoomrenderError) -> Response:
    """A canonical error in Luw's shapes."""
    if isinstance(error, Unauthorized):
        # Luw's own message first, as clients read it; then what to fix, when it is the scheme.
        messages = [AUTH_MESSAGE, *([error.message] if error.code == SCHEME_MISSING else [])]
        return JSONResponse({"status": False, "errors": {"auth": messages}}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    if isinstance(error, InsufficientCredits):
        return JSONResponse({"status": False, "insert_coin": True}, status_code=402)
    status = http_status(error)
    status = status if status in WIRE_STATUSES else (500 if status >= 500 else 400)
    if status >= 500:
        body = {"status": False, "error": "Something went wrong on the server",
                "response": error.message}
    else:
        body = {"status": False, "error": error.message}
    return JSONResponse(body, status_code=status, headers=retry_headers(error))
