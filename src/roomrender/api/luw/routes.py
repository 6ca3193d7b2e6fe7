"""The Luw.ai-compatible dialect's routes (/v2): a Luw client works by changing its base URL and
token.

Shapes follow the service's documentation (shared/api/luw.md), odd ones included: answers carry
`status: true|false`; a job's id is its `processing_url`; bad credentials, no credits and failures
have their own bodies (`errors.py`). Parameters are read and translated in `requests.py`, answers
rendered in `presenters.py`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from roomrender.accounts.keys import ApiKey
from roomrender.api.deps import IdempotencyKey, Key, services
from roomrender.api.luw.chat import answer_synchronously
from roomrender.api.luw.errors import WIRE_RESPONSES, SignedUrlGone, SignedUrlRefused
from roomrender.api.luw.params import (
    GENERATE_OPENAPI,
    RESULTS_OPENAPI,
    UPLOAD_OPENAPI,
    luw_data,
    video_style_moves,
)
from roomrender.api.luw.presenters import (
    THUMB_SIZE,
    credits_body,
    materials_body,
    result_body,
    styles_body,
)
from roomrender.api.luw.prices import luw_price
from roomrender.api.luw.requests import (
    FilePart,
    integer,
    read_params,
    text,
    to_request,
    with_persona,
)
from roomrender.api.luw.uploads import (
    IMAGE_EXTENSIONS,
    SignedPut,
    file_name,
    issued_to,
    new_storage_key,
    signed_put_url,
    ttl_for,
    verified_put,
)
from roomrender.api.reads import read_job
from roomrender.canonical.camera import CAMERA_MOVES
from roomrender.canonical.errors import Conflict, ImageTooLarge, InvalidRequest, NotFound
from roomrender.canonical.models import Task
from roomrender.catalog import styles as catalog_styles
from roomrender.swatches import palette_swatch
from roomrender.url_signing import server_secret

router = APIRouter(prefix="/v2", tags=["luw"], responses=WIRE_RESPONSES)


# -- generating ---------------------------------------------------------------------------

async def _job_answer(request: Request, key: ApiKey, processing_url: str | None) -> JSONResponse:
    if not processing_url:
        raise InvalidRequest("processing_url is required (the value /v2/generate answered)")
    svc = services(request)
    try:
        job = await read_job(svc, key, processing_url)
    except NotFound:
        raise NotFound(f"no generation with processing_url {processing_url!r}") from None
    return JSONResponse(result_body(job, svc.storage))


@router.post("/generate", summary="Start a generation (or, with processing_url, poll one)",
             openapi_extra=GENERATE_OPENAPI)
async def generate(request: Request, key: Key,
                   idempotency_key: IdempotencyKey = None) -> JSONResponse:
    params = await read_params(request)
    if "processing_url" in params:
        return await _job_answer(request, key, text(params, "processing_url"))
    svc = services(request)
    pid = integer(params, "pid")
    if pid is not None:
        persona = await run_in_threadpool(svc.personas.conditioning, key, pid)
        params = with_persona(params, persona)
    generation = to_request(params)
    # Luw's own price of the model (a clip's whatever its length; a fluw picture's 2 credits).
    price = luw_price(text(params, "model"), generation, svc.settings)
    job = await run_in_threadpool(lambda: svc.jobs.submit(
        key, generation, dialect="luw", idempotency_key=idempotency_key or None, cost=price))
    if generation.task == Task.chat:
        return JSONResponse(await answer_synchronously(svc, key, job))
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
    secret = server_secret(svc.settings)
    put = SignedPut(new_storage_key(filename, secret, key.id), key.id,
                    ttl_for(filename, svc.settings.upload_ttl_seconds))
    # The final URL is the storage's own URL of the file, which JobService takes as an `image`.
    return JSONResponse({"status": True,
                         "signed_url": signed_put_url(svc.settings.public_base_url, secret, put),
                         "final_url": svc.storage.url(put.storage_key)})


@router.put("/upload/{storage_key}", summary="The signed_url: PUT the file's bytes here, once")
async def put_upload(request: Request, storage_key: str) -> JSONResponse:
    svc = services(request)
    put = verified_put(storage_key, dict(request.query_params), server_secret(svc.settings))
    limit = svc.settings.max_input_bytes
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            raise ImageTooLarge(f"the file is larger than {limit} bytes")
    owner = await run_in_threadpool(svc.keys.get, put.owner_id)
    if owner.revoked_at is not None:
        raise SignedUrlRefused("the key this URL was signed for has been revoked")
    try:
        await run_in_threadpool(lambda: svc.jobs.store_upload(
            owner, bytes(data), file_name(storage_key), key=storage_key, ttl_seconds=put.ttl))
    except Conflict:
        raise SignedUrlGone("the signed URL was already used") from None
    return JSONResponse({"status": True, "final_url": svc.storage.url(storage_key)})


@router.get("/finalize_upload", summary="Confirm that an upload's bytes arrived (the official "
                                         "client's third step); changes nothing, so retries are harmless")
async def finalize_upload(request: Request, key: Key) -> JSONResponse:
    params = await read_params(request)
    url = text(params, "url")
    if not url:
        raise InvalidRequest("url is required: the final_url that /v2/upload answered")
    svc = services(request)
    storage_key = svc.storage.key_for_url(url)
    if not storage_key or not issued_to(storage_key, server_secret(svc.settings), key.id):
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
    return credits_body(services(request).jobs.credits(key))


@router.get("/styles", summary="Design styles (no key needed)")
def list_styles(request: Request, version: Annotated[str | None, Query()] = None) -> list[dict[str, Any]]:
    return styles_body(services(request).settings.public_base_url)


@router.get("/video_styles", summary="Video styles, the camera moves of `video` (no key needed): none "
                                     "when this server's engine makes no video")
def list_video_styles(request: Request) -> list[dict[str, str]]:
    if Task.video not in services(request).engine.supported_tasks():
        return []
    return [{"name": name, "prompt": CAMERA_MOVES[move].prompt} for name, move in video_style_moves().items()]


@router.get("/materials", summary="Magic wand materials")
def list_materials(request: Request, key: Key) -> dict[str, Any]:
    return materials_body(services(request).settings.public_base_url)


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
