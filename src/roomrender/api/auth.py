"""Finding the caller's key. Native and Luw use `Authorization: Bearer`, Spacely `X-API-KEY`;
every dialect accepts both so one key works everywhere."""

from __future__ import annotations

from fastapi import Request

from roomrender import logs
from roomrender.accounts.keys import ApiKey, KeyStore
from roomrender.api.reads import in_read_thread
from roomrender.canonical.errors import Unauthorized

# The code of a key sent without its scheme (dialects with a fixed 401 body add its message).
SCHEME_MISSING = "authorization_scheme_missing"


def presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() in ("bearer", "token") and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def authorization_problem(request: Request) -> Unauthorized | None:
    """What is wrong with an Authorization header that carries no usable key (None: it is
    absent or fine): a key sent without its scheme, a scheme with no key, another scheme."""
    authorization = request.headers.get("authorization", "").strip()
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() in ("bearer", "token"):
        if token.strip():
            return None
        return Unauthorized("the Authorization header names its scheme but no key: send "
                            "Authorization: Bearer <key>")
    if not token.strip():
        return Unauthorized("the Authorization header has no scheme: send Authorization: Bearer <key> "
                            "(the word Bearer, a space, then the key)", code=SCHEME_MISSING)
    return Unauthorized(f"the Authorization scheme {scheme[:20]!r} is not accepted: send "
                        "Authorization: Bearer <key>")


async def live_key(request: Request) -> ApiKey:
    """The live key the request's headers present, or Unauthorized; reads no body."""
    plaintext = presented_key(request)
    store: KeyStore = request.app.state.services.keys
    hit, key = store.cached(plaintext) if plaintext else (True, None)
    if not hit:
        # Only a cache miss touches the database, off the event loop (never behind slow routes).
        key = await in_read_thread(store.authenticate, plaintext)
    if key is None:
        if plaintext is None:
            raise authorization_problem(request) or Unauthorized(
                "an API key is required: send Authorization: Bearer <key> "
                "(or the header X-API-KEY: <key>)")
        raise Unauthorized("the API key is not valid or was revoked")
    return key


async def require_key(request: Request) -> ApiKey:
    """FastAPI dependency: the live key of this request, or 401; 429 past its rate limit."""
    key = await live_key(request)
    # Metrics and log lines name the caller by its key's public prefix (api/telemetry.py).
    request.state.key_prefix = key.prefix
    logs.add(key_prefix=key.prefix)
    rates = getattr(request.app.state, "request_rates", None)
    if rates is not None:
        await rates.check(key)
    return key
