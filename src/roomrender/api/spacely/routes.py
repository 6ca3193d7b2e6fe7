"""The Spacely AI compatible dialect (/api/v1): Spacely's wire format on the canonical job core.

An application written against Spacely AI Enterprise works by changing only its host and key:
`X-API-KEY`, `POST /api/v1/generate/...` → `{"data": "<refId>"}`, then
`GET /api/v1/generate/poll-result?refId=` until `data.status` is `success` (or `failed`).
Errors are `{"error": {"code", "message"}}` with status 400 (anything the client can fix,
insufficient credits included), 401 (key missing or invalid) or 500, the codes Spacely documents.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from roomrender.accounts.keys import ApiKey
from roomrender.api.auth import authorization_problem, presented_key, require_key
from roomrender.api.deps import describe_validation_errors, services
from roomrender.api.errors import http_status, retry_headers
from roomrender.api.plug import DialectPlug, WebhookContext, wire_json
from roomrender.api.spacely.resources import pick, resources
from roomrender.canonical.errors import (
    InvalidRequest,
    NotFound,
    RoomrenderError,
    Unauthorized,
)
from roomrender.canonical.models import (
    MAX_MATERIALS,
    MAX_NAME_LENGTH,
    MAX_PROMPT_LENGTH,
    GenerationRequest,
    Job,
    JobStatus,
    Task,
)
from roomrender.catalog import find_room_type
from roomrender.webhooks.bodies import BodyRenderer


class JsonBodyRoute(APIRoute):
    """Reads every POST body as JSON whatever its Content-Type: a browser `fetch` given a
    JSON.stringify() body and no header sends `text/plain`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_as_json(request: Request) -> Response:
            headers = request.scope["headers"]
            declared = dict(headers).get(b"content-type", b"")
            if request.method == "POST" and b"json" not in declared:
                request.scope["headers"] = [(name, value) for name, value in headers
                                            if name != b"content-type"]
                request.scope["headers"].append((b"content-type", b"application/json"))
            return await handler(request)

        return read_as_json


# The canonical request's length limits, on the wire (so that the schema tells them).
WireName = Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH)]
WirePrompt = Annotated[str, StringConstraints(max_length=MAX_PROMPT_LENGTH)]
WireMaterials = (Annotated[list[WireName], Field(max_length=MAX_MATERIALS)]
                 | Annotated[str, StringConstraints(max_length=MAX_MATERIALS * (MAX_NAME_LENGTH + 1))]
                 | None)

router = APIRouter(prefix="/api/v1", tags=["spacely"], route_class=JsonBodyRoute)

# The events Spacely calls a webhook for (the plug registers them; requests record them).
WEBHOOK_EVENTS = ("job.succeeded", "job.failed")
# Canonical field names in core messages, as a Spacely client knows them.
WIRE_NAMES = {"image": "imageUrl", "negative_prompt": "nPrompt", "webhook": "webhookUrl",
              "product_image": "productImageUrl"}


# -- errors -------------------------------------------------------------------------------

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


# -- auth ---------------------------------------------------------------------------------

api_key_header = APIKeyHeader(name="X-API-KEY", auto_error=False,
                              description="The same keys as the native API")


async def spacely_key(request: Request,
                      _documented: Annotated[str | None, Security(api_key_header)]) -> ApiKey:
    if presented_key(request) is None:
        raise authorization_problem(request) or Unauthorized(
            "an API key is required: send the header X-API-KEY: <key>")
    return await require_key(request)


Key = Annotated[ApiKey, Depends(spacely_key)]


# -- wire bodies --------------------------------------------------------------------------

class _Body(BaseModel):
    # Fields Spacely may add later, or a client's extras, are ignored rather than refused.
    model_config = ConfigDict(extra="ignore")

    webhookUrl: str | None = Field(
        None, max_length=2048,
        description="Called with the poll-result body when the generation succeeds or fails")


class StandardBody(_Body):
    model: WireName = Field(description="spacely-v1, spacely-unfurnished-space or spacely-style-transfer",
                       examples=["spacely-v1"])
    imageUrl: str = Field(description="URL of the room photo", examples=["https://example.com/room.jpg"])
    spaceType: WireName = Field(description="see GET /api/v1/resources", examples=["living_room"])
    spaceStyle: WireName = Field(description="see GET /api/v1/resources", examples=["modern"])
    spaceColor: WireName | None = Field(None, description="set_1 .. set_40", examples=["set_1"])
    styleUrl: str | None = Field(None, description="URL of a style reference image "
                                 "(required by spacely-style-transfer)")
    materialsIds: WireMaterials = Field(
        None, description="material ids (a list, or one comma-separated string)",
        examples=[["paper_wallpaper", "porcelain_tile"]])
    renovateType: WireName = Field(description="residential, commercial or exterior",
                              examples=["residential"])


class AdvanceBody(_Body):
    model: WireName = Field(examples=["spacely-v1"])
    imageUrl: str = Field(examples=["https://example.com/room.jpg"])
    prompt: WirePrompt | None = Field(None, examples=["a bright living room with a green velvet sofa"])
    nPrompt: WirePrompt | None = Field(None, description="negative prompt")
    styleUrl: str | None = Field(None, description="style reference (spacely-style-transfer)")
    renovateType: WireName = Field(description="residential or commercial", examples=["residential"])


class StyleTransferBody(_Body):
    imageUrl: str
    spaceType: WireName = Field(examples=["bedroom"])
    styleImageUrl: str = Field(description="URL of the reference image whose style is applied")
    renovateType: WireName = Field(examples=["residential"])


class EmptyRoomBody(_Body):
    imageUrl: str
    spaceType: WireName | None = None
    spaceStyle: WireName | None = None
    renovateType: WireName | None = None
    spaceColor: WireName | None = None
    materialsIds: WireMaterials = None


class ColorTransferBody(_Body):
    imageUrl: str
    area: WireName = Field(description="wall, ceiling or floor", examples=["wall"])
    color: WireName = Field(description="hex colour", examples=["#A3B18A"])


class TextToImageBody(_Body):
    prompt: WirePrompt = Field(examples=["a cosy japandi bedroom at dusk"])
    nPrompt: WirePrompt | None = None


class Rect(BaseModel):
    """A rectangle in pixels of the room photo, origin top-left."""

    x: float = Field(ge=0, allow_inf_nan=False)
    y: float = Field(ge=0, allow_inf_nan=False)
    w: float = Field(gt=0, allow_inf_nan=False)
    h: float = Field(gt=0, allow_inf_nan=False)

    def pixels(self) -> dict[str, int]:
        return {"x": round(self.x), "y": round(self.y), "w": round(self.w), "h": round(self.h)}


class FurniturePlacementBody(_Body):
    imageUrl: str = Field(description="URL of the room photo", examples=["https://example.com/room.jpg"])
    productImageUrl: str = Field(description="URL of the product's photo (a plain background, or "
                                 "a transparent PNG)", examples=["https://example.com/armchair.png"])
    placement: Rect = Field(description="where the product goes, scaled to fit inside it")
    area: Rect = Field(description="the only part of the photo that may change; holds placement")


class SubmittedOut(BaseModel):
    data: str = Field(description="refId: pass it to poll-result", examples=["0b6a4c1e-..."])


class PollData(BaseModel):
    refId: str
    status: str = Field(description="processing, success or failed")
    result: list[str] = Field(description="result image URLs in order ([] until success)")
    progress: int = Field(description="percent done, 0..100")
    message: str | None = Field(None, description="why the generation failed")
    errorCode: str | None = None


class PollOut(BaseModel):
    data: PollData


# -- translation: wire → canonical --------------------------------------------------------

def _scene(*, space_type: str | None = None, space_style: str | None = None,
           space_color: str | None = None, materials_ids: list[str] | str | None = None,
           renovate_type: str | None = None,
           renovate_choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The canonical room fields for Spacely's space/style/colour/material/renovate values.
    Empty strings count as absent: form-driven clients send them for "none"."""
    res = resources()
    fields: dict[str, Any] = {}
    exterior = False
    if renovate_type:
        exterior = res.renovate_types[pick("renovateType", renovate_type,
                                            renovate_choices or tuple(res.renovate_types))]
    if space_type:
        room_type = res.space_types[pick("spaceType", space_type, res.space_types)]
        fields["room_type"] = room_type
        found = find_room_type(room_type)
        exterior = exterior or bool(found and found.exterior)
    if space_style:
        fields["style"] = res.space_styles[pick("spaceStyle", space_style, res.space_styles)]
    if space_color:
        fields["palette"] = ",".join(res.space_colors[pick("spaceColor", space_color,
                                                           res.space_colors)])
    ids = materials_ids.split(",") if isinstance(materials_ids, str) else materials_ids or []
    fields["materials"] = [res.materials[pick("materialsIds", item.strip(), res.materials)]
                           for item in ids if item.strip()]
    fields["exterior"] = exterior
    return fields


def _model_task(model: str) -> Task:
    return resources().models[pick("model", model, resources().models)]


def _hex_color(value: str) -> str:
    digits = value.strip().removeprefix("#")
    if len(digits) != 6 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise InvalidRequest(f"color: {value[:64]!r} is not a hex colour like #A3B18A",
                             code="invalid_value")
    return "#" + digits.upper()


def _webhook(body: _Body) -> dict[str, Any]:
    if not body.webhookUrl:
        return {}
    return {"webhook": body.webhookUrl, "webhook_events": list(WEBHOOK_EVENTS)}


def canonical(**fields: Any) -> GenerationRequest:
    """A GenerationRequest, with its validation errors told in Spacely's field names."""
    try:
        return GenerationRequest(**fields)
    except ValidationError as invalid:
        errors = [{"loc": tuple(WIRE_NAMES.get(str(part), part) for part in item["loc"]),
                   "msg": item["msg"]} for item in invalid.errors()]
        raise InvalidRequest(describe_validation_errors(errors)) from None


def standard_request(body: StandardBody, variants: int) -> GenerationRequest:
    task = _model_task(body.model)
    if task == Task.style_transfer and not body.styleUrl:
        raise InvalidRequest("styleUrl: the model spacely-style-transfer needs a style reference "
                             "image URL")
    scene = _scene(space_type=body.spaceType, space_style=body.spaceStyle,
                   space_color=body.spaceColor, materials_ids=body.materialsIds,
                   renovate_type=body.renovateType)
    return canonical(task=task, image=body.imageUrl, reference_image=body.styleUrl or None,
                     n=variants, **scene, **_webhook(body))


def advance_request(body: AdvanceBody) -> GenerationRequest:
    task = _model_task(body.model)
    if task == Task.style_transfer and not body.styleUrl:
        raise InvalidRequest("styleUrl: the model spacely-style-transfer needs a style reference "
                             "image URL")
    scene = _scene(renovate_type=body.renovateType, renovate_choices=("residential", "commercial"))
    return canonical(task=task, image=body.imageUrl, reference_image=body.styleUrl or None,
                     prompt=body.prompt or None, negative_prompt=body.nPrompt or None,
                     **scene, **_webhook(body))


def style_transfer_request(body: StyleTransferBody) -> GenerationRequest:
    scene = _scene(space_type=body.spaceType, renovate_type=body.renovateType)
    return canonical(task=Task.style_transfer, image=body.imageUrl,
                     reference_image=body.styleImageUrl, **scene, **_webhook(body))


def empty_room_request(body: EmptyRoomBody) -> GenerationRequest:
    scene = _scene(space_type=body.spaceType, space_style=body.spaceStyle,
                   space_color=body.spaceColor, materials_ids=body.materialsIds,
                   renovate_type=body.renovateType)
    return canonical(task=Task.empty_room, image=body.imageUrl, **scene, **_webhook(body))


def color_transfer_request(body: ColorTransferBody, *, exact: bool) -> GenerationRequest:
    area = pick("area", body.area, resources().areas)
    return canonical(task=Task.recolor, image=body.imageUrl, area=area,
                     color=_hex_color(body.color), exact_color=exact, **_webhook(body))


def furniture_placement_request(body: FurniturePlacementBody) -> GenerationRequest:
    return canonical(task=Task.place, image=body.imageUrl, product_image=body.productImageUrl,
                     placement=body.placement.pixels(), area=body.area.pixels(), **_webhook(body))


def text_to_image_request(body: TextToImageBody) -> GenerationRequest:
    return canonical(task=Task.text_to_image, prompt=body.prompt,
                     negative_prompt=body.nPrompt or None, **_webhook(body))


# -- presenting: canonical → wire ---------------------------------------------------------

def result_body(job: Job) -> dict[str, Any]:
    """The poll-result body of a job (also the body of its Spacely webhook)."""
    data: dict[str, Any] = {"refId": job.id, "status": "processing", "result": [],
                            "progress": job.percent}
    if job.status == JobStatus.succeeded:
        data["status"] = "success"
        # Built when the job is presented, not stored: a signed object-store URL must be fresh.
        data["result"] = [output.url for output in job.outputs]
        if not job.outputs:
            data["message"] = "the results have expired and were deleted"
    elif job.status in (JobStatus.failed, JobStatus.canceled):
        data["status"] = "failed"
        data["message"] = job.error_message or "the generation failed"
        data["errorCode"] = job.error_code or "generation_failed"
    return {"data": data}


# -- routes -------------------------------------------------------------------------------

def _submit(request: Request, key: ApiKey, generation: GenerationRequest) -> dict[str, str]:
    job = services(request).jobs.submit(key, generation, dialect="spacely")
    return {"data": job.id}


@router.post("/generate/standard", response_model=SubmittedOut, responses=ERRORS,
             summary="Restyle a room (or furnish it, or transfer a style) by model; renders "
                     "several variants")
def generate_standard(request: Request, body: StandardBody, key: Key) -> dict[str, str]:
    variants = services(request).settings.spacely_standard_variants
    return _submit(request, key, standard_request(body, variants))


@router.post("/generate/advance", response_model=SubmittedOut, responses=ERRORS,
             summary="Restyle a room after a prompt and a negative prompt")
def generate_advance(request: Request, body: AdvanceBody, key: Key) -> dict[str, str]:
    return _submit(request, key, advance_request(body))


@router.post("/generate/style-transfer", response_model=SubmittedOut, responses=ERRORS,
             summary="Restyle a room after a reference image")
def generate_style_transfer(request: Request, body: StyleTransferBody, key: Key) -> dict[str, str]:
    return _submit(request, key, style_transfer_request(body))


@router.post("/generate/empty-room", response_model=SubmittedOut, responses=ERRORS,
             summary="Remove the furniture and decor from a room")
def generate_empty_room(request: Request, body: EmptyRoomBody, key: Key) -> dict[str, str]:
    return _submit(request, key, empty_room_request(body))


@router.post("/generate/color-transfer", response_model=SubmittedOut, responses=ERRORS,
             summary="Paint the walls, ceiling or floor in a colour")
def generate_color_transfer(request: Request, body: ColorTransferBody, key: Key) -> dict[str, str]:
    return _submit(request, key, color_transfer_request(body, exact=False))


@router.post("/generate/color-transfer-exact", response_model=SubmittedOut, responses=ERRORS,
             summary="Paint the walls, ceiling or floor in exactly the colour given")
def generate_color_transfer_exact(request: Request, body: ColorTransferBody,
                                  key: Key) -> dict[str, str]:
    return _submit(request, key, color_transfer_request(body, exact=True))


@router.post("/generate/text-to-image", response_model=SubmittedOut, responses=ERRORS,
             summary="Render a room from a prompt alone")
def generate_text_to_image(request: Request, body: TextToImageBody, key: Key) -> dict[str, str]:
    return _submit(request, key, text_to_image_request(body))


@router.post("/generate/furniture-placement", response_model=SubmittedOut, responses=ERRORS,
             summary="Place a product, cut out of its photo, into a room at `placement`; only "
                     "`area` changes")
def generate_furniture_placement(request: Request, body: FurniturePlacementBody,
                                 key: Key) -> dict[str, str]:
    return _submit(request, key, furniture_placement_request(body))


@router.get("/generate/poll-result", response_model=PollOut, response_model_exclude_none=True,
            responses=ERRORS,
            summary="A generation's status: processing (with progress), success (with the "
                    "result URLs) or failed (with a message)")
def poll_result(request: Request, key: Key,
                refId: Annotated[str, Query(min_length=1, max_length=64,  # noqa: N803
                                            description="the refId a generate call answered")]
                ) -> dict[str, Any]:
    try:
        job = services(request).jobs.get(key, refId)
    except NotFound:
        raise NotFound(f"refId {refId!r} was not found for this API key") from None
    return result_body(job)


@router.get("/resources", summary="The accepted models, space types, styles, colour sets, "
            "materials and areas, and which endpoints this server's engine runs")
def spacely_resources(request: Request) -> dict[str, Any]:
    raw = resources().raw
    supported = services(request).engine.supported_tasks()
    endpoint_tasks = {
        "/api/v1/generate/standard": [model["task"] for model in raw["models"]],
        "/api/v1/generate/advance": [model["task"] for model in raw["models"]],
        "/api/v1/generate/style-transfer": [Task.style_transfer.value],
        "/api/v1/generate/empty-room": [Task.empty_room.value],
        "/api/v1/generate/color-transfer": [Task.recolor.value],
        "/api/v1/generate/color-transfer-exact": [Task.recolor.value],
        "/api/v1/generate/text-to-image": [Task.text_to_image.value],
        "/api/v1/generate/furniture-placement": [Task.place.value],
    }
    return {"data": {
        "models": [{**model, "supported": Task(model["task"]) in supported}
                   for model in raw["models"]],
        "renovateTypes": raw["renovate_types"],
        "spaceTypes": raw["space_types"],
        "spaceStyles": raw["space_styles"],
        "spaceColors": raw["space_colors"],
        "materials": raw["materials"],
        "areas": raw["areas"],
        "endpoints": [{"path": path, "supported": any(Task(t) in supported for t in tasks)}
                      for path, tasks in endpoint_tasks.items()],
        "standardVariants": services(request).settings.spacely_standard_variants,
    }}


def webhook_body(_context: WebhookContext) -> BodyRenderer:
    """The poll-result body, byte for byte, on success or failure."""
    return lambda _event, job: wire_json(result_body(job))


PLUG = DialectPlug(name="spacely", routers=[router], prefix="/api/v1", render_error=spacely_error,
                   webhook_events=frozenset(WEBHOOK_EVENTS), webhook_body=webhook_body)
