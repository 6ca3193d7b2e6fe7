"""The Replicate dialect's resources besides predictions: models and their versions (the data of
`models.py`), files (inputs uploaded by the clients, kept as this server's uploads) and
the default webhook's signing secret: their routes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from roomrender.accounts.keys import ApiKey
from roomrender.api.deps import Key, services
from roomrender.api.replicate.errors import BadRequest, replicate_responses
from roomrender.api.replicate.models import ReplicateModel, model_catalog
from roomrender.api.replicate.presenters import file_json, model_json, version_json
from roomrender.canonical.errors import ImageTooLarge, NotFound, Unsupported
from roomrender.storage.files import StoredFile

router = APIRouter(prefix="/v1", tags=["replicate"], responses=replicate_responses())
FILES_PAGE = 100


# -- models and versions ----------------------------------------------------------------------

def _model(owner: str, name: str) -> ReplicateModel:
    model = model_catalog().find(f"{owner}/{name}")
    if model is None:
        raise NotFound(f"model {owner}/{name} not found; GET /v1/models lists this server's models")
    return model


@router.get("/models", summary="The models this server runs")
def list_models(request: Request, _key: Key) -> dict[str, Any]:
    base = services(request).settings.public_base_url
    return {"next": None, "previous": None,
            "results": [model_json(model, base) for model in model_catalog().models.values()]}


@router.get("/models/{owner}/{name}", summary="A model, with its latest version's schema")
def get_model(request: Request, owner: str, name: str, _key: Key) -> dict[str, Any]:
    return model_json(_model(owner, name), services(request).settings.public_base_url)


@router.get("/models/{owner}/{name}/versions", summary="A model's versions, newest first")
def list_versions(owner: str, name: str, _key: Key) -> dict[str, Any]:
    return {"next": None, "previous": None,
            "results": [version_json(version) for version in _model(owner, name).versions]}


@router.get("/models/{owner}/{name}/versions/{version_id}",
            summary="A model version and its OpenAPI schema of inputs and output")
def get_version(owner: str, name: str, version_id: str, _key: Key) -> dict[str, Any]:
    version = _model(owner, name).version(version_id)
    if version is None:
        raise NotFound(f"model {owner}/{name} has no version {version_id!r}")
    return version_json(version)


# -- files ----------------------------------------------------------------------------------------

def _sha256(request: Request, stored: StoredFile) -> str:
    return hashlib.sha256(services(request).storage.get(stored.key)).hexdigest()


@router.post("/files", status_code=201,
             summary="Upload an input image (multipart: `content`, and optionally `filename`, "
                     "`type`); pass its `urls.get` as an input")
async def create_file(request: Request, key: Key) -> JSONResponse:
    svc = services(request)
    form = await request.form()
    content = form.get("content")
    if not isinstance(content, UploadFile):
        raise BadRequest("the multipart body needs the file as its `content` part")
    await _refuse_metadata(form.get("metadata"))
    limit = svc.settings.max_input_bytes
    data = await content.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"Files must be at most {limit} bytes in size")
    given_name = form.get("filename")
    name = given_name if isinstance(given_name, str) and given_name else content.filename
    stored = await run_in_threadpool(svc.jobs.store_upload, key, data, (name or "")[:255] or None)
    return JSONResponse(file_json(stored, hashlib.sha256(data).hexdigest(), svc.settings.public_base_url),
                        status_code=201)


async def _refuse_metadata(part: UploadFile | str | None) -> None:
    """Metadata (a form field, or a JSON part as the Node client sends it) is not kept here: an
    empty object is fine, anything else is refused rather than dropped."""
    text = (await part.read()).decode("utf-8", "replace") if isinstance(part, UploadFile) else part
    if not text or not text.strip():
        return
    try:
        metadata = json.loads(text)
    except ValueError:
        raise BadRequest("metadata must be a JSON object") from None
    if metadata:
        raise Unsupported("file metadata is not kept by this server; upload the file without it")


async def _own_file(request: Request, key: ApiKey, file_id: str) -> StoredFile:
    try:
        return await run_in_threadpool(services(request).jobs.upload, key, file_id)
    except NotFound:
        raise NotFound("File not found") from None


@router.get("/files", summary="The token's files, newest first")
async def list_files(request: Request, key: Key) -> dict[str, Any]:
    svc = services(request)
    files = await run_in_threadpool(svc.jobs.uploads, key, limit=FILES_PAGE)
    hashes = [await run_in_threadpool(_sha256, request, stored) for stored in files]
    base = svc.settings.public_base_url
    return {"next": None, "previous": None,
            "results": [file_json(stored, digest, base) for stored, digest in zip(files, hashes, strict=True)]}


@router.get("/files/{file_id}", summary="A file's details")
async def get_file(request: Request, file_id: str, key: Key) -> dict[str, Any]:
    stored = await _own_file(request, key, file_id)
    digest = await run_in_threadpool(_sha256, request, stored)
    return file_json(stored, digest, services(request).settings.public_base_url)


@router.delete("/files/{file_id}", status_code=204, response_class=Response,
               summary="Delete a file no prediction has used")
async def delete_file(request: Request, file_id: str, key: Key) -> Response:
    await _own_file(request, key, file_id)
    await run_in_threadpool(services(request).jobs.delete_upload, key, file_id)
    return Response(status_code=204)


# -- webhooks -----------------------------------------------------------------------------------

@router.get("/webhooks/default/secret",
            summary="The signing secret of this token's webhooks (Standard Webhooks, whsec_...)")
def default_webhook_secret(request: Request, key: Key) -> dict[str, str]:
    return {"key": services(request).webhook_secrets.get(key.id).current}
