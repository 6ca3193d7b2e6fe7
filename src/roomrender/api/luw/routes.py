"""The Luw.ai-compatible dialect (/v2): a Luw client works by changing its base URL and token.

Shapes follow the service's documentation (shared/api/luw.md), odd ones included: answers carry
`status: true|false`; a job's id is its `processing_url`; bad credentials, no credits and failures
have their own bodies.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from roomrender.accounts.keys import ApiKey
from roomrender.api.auth import SCHEME_MISSING
from roomrender.api.deps import IDEMPOTENCY_KEY_MAX, Key, iso, services
from roomrender.api.errors import HttpError, http_status, retry_headers
from roomrender.api.luw.params import (
    GENERATE_OPENAPI,
    MODELS,
    RESULTS_OPENAPI,
    UPLOAD_OPENAPI,
    VIDEO_MODELS,
    WEBHOOK_EVENTS,
    FilePart,
    luw_data,
    read_params,
    text,
    to_request,
)
from roomrender.api.plug import DialectPlug, WebhookContext, wire_json
from roomrender.api.reads import read
from roomrender.canonical.errors import (
    Conflict,
    ImageTooLarge,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    RoomrenderError,
    Unauthorized,
)
from roomrender.canonical.models import Job, JobStatus, Task
from roomrender.catalog import styles as catalog_styles
from roomrender.storage import FileMissing
from roomrender.storage.base import Storage
from roomrender.swatches import palette_swatch
from roomrender.url_signing import (
    SignatureExpired,
    SignatureInvalid,
    server_secret,
    sign,
    verify,
)
from roomrender.webhooks.bodies import BodyRenderer

# Luw's statuses; its bodies vary (`{"status": false, "error": ...}`, `insert_coin`, ...).
WIRE_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description} for status, description in {
        400: "Invalid request: `{\"status\": false, \"error\": \"...\"}`",
        401: "Wrong credentials or expired token", 402: "Not enough credits (`insert_coin`)",
        403: "A signed URL refused", 404: "No such generation", 405: "Method not allowed",
        410: "A signed URL expired or used", 429: "Past the key's limits (`Retry-After`)",
        500: "Server error (also storage or database unavailable)"}.items()}
router = APIRouter(prefix="/v2", tags=["luw"], responses=WIRE_RESPONSES)

AUTH_MESSAGE = "Wrong credentials or expired token"
# Luw answers with these; other statuses of canonical errors are folded into 400 / 500.
WIRE_STATUSES = {400, 401, 402, 403, 404, 405, 410, 429, 500}
TEMPORARY_PREFIX = "x12tmp-"
TEMPORARY_SECONDS = 12 * 3600
SIGNED_URL_SECONDS = 3600
UPLOAD_PURPOSE = "luw-upload"
# A final URL's storage key carries a MAC of its key's id: finalize_upload tells this key's upload
# waiting for its bytes (400) from another key's or an unknown URL (404) without keeping state.
FINAL_URL_PURPOSE = "luw-final-url"
NONCE_CHARS = MAC_CHARS = 16
# Luw stores other files too (mp4, glb, svg...); this server keeps images only.
IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp"}
# What /v2/credits reports as the balance of a key with unlimited credits (a number, so that
# clients comparing or subtracting keep working): the largest 32-bit signed integer.
UNLIMITED_CREDITS = 2**31 - 1
THUMB_SIZE = 160
IMAGE_SIZE = 512



# -- errors ------------------------------------------------------------------------------------

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


# -- answers ------------------------------------------------------------------------------

def _progress(job: Job, state: str) -> dict[str, Any]:
    return {"started_at": iso(job.started_at or job.created_at, whole_seconds=True), "state": state,
            "percent": job.percent}


def _failure(job: Job, state: str, message: str, code: str) -> dict[str, Any]:
    return {"status": False, "error": message, "response": code, "progress": _progress(job, state)}


def result_body(job: Job, storage: Storage) -> dict[str, Any]:
    """What /v2/results answers for `job` now (also the body of Luw webhooks)."""
    if not job.status.is_terminal:
        return {"status": True, "progress": _progress(job, "processing"), "processing": True,
                "processing_url": job.id}
    if job.status == JobStatus.failed:
        return _failure(job, "failed", job.error_message or "the generation failed",
                        job.error_code or "generation_failed")
    if job.status == JobStatus.canceled:
        return _failure(job, "canceled", job.error_message or "the job was canceled",
                        job.error_code or "canceled")
    expired = _failure(job, "expired", "the results of this job have expired", "expired")
    if not job.outputs:
        return expired
    if job.task == Task.segment or any(output.label is not None for output in job.outputs):
        segments = []
        for output in job.outputs:
            try:
                mask = storage.get(output.key)
            except FileMissing:
                return expired
            segments.append({"label": output.label, "mask": base64.b64encode(mask).decode("ascii"),
                             "score": None})
        return {"status": True, "output": segments}
    urls = [output.url for output in job.outputs]
    return {"status": True, "output": urls[0] if len(urls) == 1 and job.request.n == 1 else urls}


async def _job_answer(request: Request, key: ApiKey, processing_url: str | None) -> JSONResponse:
    if not processing_url:
        raise InvalidRequest("processing_url is required (the value /v2/generate answered)")
    svc = services(request)
    try:
        job = await read(svc.db, svc.jobs.get, key, processing_url)
    except NotFound:
        raise NotFound(f"no generation with processing_url {processing_url!r}") from None
    return JSONResponse(result_body(job, svc.storage))


# -- generating ---------------------------------------------------------------------------

@router.post("/generate", summary="Start a generation (or, with processing_url, poll one)",
             openapi_extra=GENERATE_OPENAPI)
async def generate(request: Request, key: Key) -> JSONResponse:
    params = await read_params(request)
    if "processing_url" in params:
        return await _job_answer(request, key, text(params, "processing_url"))
    generation = to_request(params)
    idempotency_key = request.headers.get("idempotency-key") or None
    if idempotency_key is not None and len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
        raise InvalidRequest("the Idempotency-Key header is longer than 255 characters")
    svc = services(request)
    job = await run_in_threadpool(lambda: svc.jobs.submit(
        key, generation, dialect="luw", idempotency_key=idempotency_key))
    return JSONResponse(result_body(job, svc.storage))


@router.get("/generate", summary="Poll a generation: /v2/generate?processing_url=...")
async def generate_poll(request: Request, key: Key) -> JSONResponse:
    params = await read_params(request)
    if "processing_url" not in params:
        raise InvalidRequest("start a generation with POST; a GET needs processing_url to poll one")
    return await _job_answer(request, key, text(params, "processing_url"))


@router.post("/results", summary="A generation's progress, then its output (processing_url in "
                                  "the query, a form or JSON)", openapi_extra=RESULTS_OPENAPI)
async def results(request: Request, key: Key) -> JSONResponse:
    params = await read_params(request)
    return await _job_answer(request, key, text(params, "processing_url"))


@router.get("/results", summary="The same by GET; a form body works too, as in Luw's cURL example")
async def results_by_get(request: Request, key: Key) -> JSONResponse:
    return await results(request, key)


# -- uploads ------------------------------------------------------------------------------

def _final_mac(secret: bytes, nonce: str, owner_id: str) -> str:
    return sign(secret, FINAL_URL_PURPOSE, nonce, owner_id, expires=0)[:MAC_CHARS]


def _storage_key(filename: str, secret: bytes, owner_id: str) -> str:
    """An unguessable storage key that ends with the client's file name, as Luw's final URLs do:
    a random nonce, the MAC binding it to the key's id, the name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", filename).replace("..", ".").strip(".-")[-80:]
    nonce = secrets.token_hex(NONCE_CHARS // 2)
    return f"{nonce}{_final_mac(secret, nonce, owner_id)}-{safe or 'upload'}"


def _issued_to(storage_key: str, secret: bytes, owner_id: str) -> bool:
    """Whether /v2/upload issued this storage key to this key."""
    head = storage_key.split("-", 1)[0]
    if len(head) != NONCE_CHARS + MAC_CHARS:
        return False
    nonce, mac = head[:NONCE_CHARS], head[NONCE_CHARS:]
    return hmac.compare_digest(_final_mac(secret, nonce, owner_id), mac)


def _upload_parts(key: str, owner_id: str, ttl: int) -> tuple[str, ...]:
    return (key, owner_id, str(ttl))


@router.post("/upload", summary="Get a signed_url to PUT a file to, and its final_url",
             openapi_extra=UPLOAD_OPENAPI)
async def create_upload(request: Request, key: Key) -> JSONResponse:
    params = await read_params(request)
    value = params.get("filename")
    filename = value.filename if isinstance(value, FilePart) else text(params, "filename")
    if not filename:
        raise InvalidRequest("filename is required, e.g. -F filename=room.jpg")
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension and extension not in IMAGE_EXTENSIONS:
        raise InvalidRequest(f"this server stores JPEG, PNG and WebP images only, not .{extension}")
    svc = services(request)
    base = svc.settings.public_base_url.rstrip("/")
    secret = server_secret(svc.settings)
    storage_key = _storage_key(filename, secret, key.id)
    ttl = TEMPORARY_SECONDS if filename.startswith(TEMPORARY_PREFIX) else svc.settings.upload_ttl_seconds
    expires = int(time.time()) + SIGNED_URL_SECONDS
    signature = sign(secret, UPLOAD_PURPOSE,
                     *_upload_parts(storage_key, key.id, ttl), expires=expires)
    signed_url = (f"{base}/v2/upload/{storage_key}?owner={key.id}&ttl={ttl}&expires={expires}"
                  f"&signature={signature}")
    # The server's own /files/ URL, which JobService.resolve_image takes as an `image`.
    return JSONResponse({"status": True, "signed_url": signed_url,
                         "final_url": f"{base}/files/{storage_key}"})


@router.put("/upload/{storage_key}", summary="The signed_url: PUT the file's bytes here, once")
async def put_upload(request: Request, storage_key: str) -> JSONResponse:
    svc = services(request)
    query = request.query_params
    owner_id = query.get("owner", "")
    try:
        ttl, expires = int(query.get("ttl", "")), int(query.get("expires", ""))
        verify(server_secret(svc.settings), UPLOAD_PURPOSE,
               *_upload_parts(storage_key, owner_id, ttl), expires=expires,
               signature=query.get("signature", ""))
    except (ValueError, SignatureInvalid):
        raise SignedUrlRefused("the signed URL is not valid (altered or not signed by this server)"
                               ) from None
    except SignatureExpired:
        raise SignedUrlGone("the signed URL has expired; ask /v2/upload for a new one") from None
    limit = svc.settings.max_input_bytes
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            raise ImageTooLarge(f"the file is larger than {limit} bytes")
    owner = await run_in_threadpool(svc.keys.get, owner_id)
    if owner.revoked_at is not None:
        raise SignedUrlRefused("the key this URL was signed for has been revoked")
    name = storage_key.split("-", 1)[1]
    try:
        await run_in_threadpool(lambda: svc.jobs.store_upload(
            owner, bytes(data), name, key=storage_key, ttl_seconds=ttl))
    except Conflict:
        raise SignedUrlGone("the signed URL was already used") from None
    base = svc.settings.public_base_url.rstrip("/")
    return JSONResponse({"status": True, "final_url": f"{base}/files/{storage_key}"})


@router.get("/finalize_upload", summary="Confirm that an upload's bytes arrived (the official "
                                         "client's third step); changes nothing, so retries are harmless")
async def finalize_upload(request: Request, key: Key) -> JSONResponse:
    params = await read_params(request)
    url = text(params, "url")
    if not url:
        raise InvalidRequest("url is required: the final_url that /v2/upload answered")
    svc = services(request)
    prefix = svc.settings.public_base_url.rstrip("/") + "/files/"
    storage_key = url.split("?", 1)[0].split("#", 1)[0].removeprefix(prefix) if url.startswith(prefix) else ""
    if not storage_key or not _issued_to(storage_key, server_secret(svc.settings), key.id):
        raise NotFound(f"no upload of this key has the final_url {url!r}")
    stored = await run_in_threadpool(svc.files.lookup, storage_key)
    if stored is None:
        raise InvalidRequest("the file's bytes have not arrived: PUT them to the signed_url first",
                             code="upload_not_received")
    if stored.expired():
        raise NotFound(f"the upload {url!r} has expired; upload the file again")
    return JSONResponse({"status": True})


# -- account and knowledge ---------------------------------------------------------------------

@router.get("/credits", summary="The key's credits")
def credits(request: Request, key: Key) -> dict[str, Any]:
    balance = services(request).jobs.credits(key)
    unlimited = balance["granted"] is None
    return {
        "credits": {
            "available": UNLIMITED_CREDITS if unlimited else balance["available"],
            "used": balance["used"],
            "purchased": UNLIMITED_CREDITS if unlimited else balance["granted"],
        },
        "subscription": {"plan": "unlimited" if unlimited else "credits", "unlimited": unlimited,
                         "reserved": balance["reserved"]},
    }


def _swatch_url(request: Request, kind: str, item: str, size: int) -> str:
    base = services(request).settings.public_base_url.rstrip("/")
    return f"{base}/v2/swatches/{kind}/{item}.png?size={size}"


@router.get("/styles", summary="Design styles (no key needed)")
def list_styles(request: Request, version: Annotated[str | None, Query()] = None) -> list[dict[str, Any]]:
    return [
        {"name": entry["name"], "description": entry["description"],
         "thumb_image": _swatch_url(request, "styles", entry["id"], THUMB_SIZE),
         "image": _swatch_url(request, "styles", entry["id"], IMAGE_SIZE)}
        for entry in luw_data()["styles"]
    ]


@router.get("/video_styles", summary="Video styles (no key needed): none while no video model is served")
def list_video_styles() -> list[dict[str, str]]:
    if not VIDEO_MODELS & MODELS.keys():
        return []
    return [{"name": entry["name"], "prompt": entry["prompt"]} for entry in luw_data().get("video_styles", [])]


@router.get("/materials", summary="Magic wand materials")
def list_materials(request: Request, key: Key) -> dict[str, Any]:
    return {"status": True, "materials": [
        {"id": entry["id"], "prompt_type": entry["prompt_type"], "title": entry["title"],
         "extra": entry["extra"],
         "image": _swatch_url(request, "materials", str(entry["id"]), IMAGE_SIZE),
         "thumb": _swatch_url(request, "materials", str(entry["id"]), THUMB_SIZE)}
        for entry in luw_data()["materials"]
    ]}


@router.get("/swatches/{kind}/{item}.png", summary="A style's or material's palette swatch",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def swatch(kind: str, item: str, size: Annotated[int, Query(ge=16, le=1024)] = THUMB_SIZE) -> Response:
    if kind == "styles" and item in catalog_styles():
        palette = catalog_styles()[item].palette
    elif kind == "materials":
        found = [entry for entry in luw_data()["materials"] if str(entry["id"]) == item]
        if not found:
            raise NotFound(f"no material {item!r}")
        palette = tuple(found[0]["palette"])
    else:
        raise NotFound(f"no swatch {kind}/{item}")
    return Response(palette_swatch(tuple(palette), size), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=86400"})


def webhook_body(context: WebhookContext) -> BodyRenderer:
    """What /v2/results answers, byte for byte, on success or failure."""
    return lambda _event, job: wire_json(result_body(job, context.storage))


PLUG = DialectPlug(name="luw", routers=[router], prefix="/v2", render_error=luw_error,
                   webhook_events=frozenset(WEBHOOK_EVENTS), webhook_body=webhook_body)
