"""The Spacely AI compatible dialect's routes (/api/v1): Spacely's wire format on the canonical
job core.

An application written against Spacely AI Enterprise works by changing only its host and key:
`X-API-KEY`, `POST /api/v1/generate/...` → `{"data": "<refId>"}`, then
`GET /api/v1/generate/poll-result?refId=` until `data.status` is `success` (or `failed`).
Bodies are read and translated in `requests.py`, answers rendered in `presenters.py`, errors in
`errors.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Security
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from roomrender.accounts.keys import ApiKey
from roomrender.api.auth import authorization_problem, presented_key, require_key
from roomrender.api.deps import services
from roomrender.api.reads import read_job
from roomrender.api.spacely.errors import ERRORS
from roomrender.api.spacely.presenters import PollOut, SubmittedOut, resources_body, result_body
from roomrender.api.spacely.requests import (
    AdvanceBody,
    ColorTransferBody,
    DecorationPlacementBody,
    EmptyRoomBody,
    FurniturePlacementBody,
    OnePointPerspectiveBody,
    StandardBody,
    StyleTransferBody,
    TextToImageBody,
    advance_request,
    color_transfer_request,
    decoration_placement_request,
    empty_room_request,
    furniture_placement_request,
    perspective_body,
    perspective_request,
    standard_request,
    style_transfer_request,
    text_to_image_request,
)
from roomrender.canonical.errors import NotFound, Unauthorized
from roomrender.canonical.models import GenerationRequest


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


router = APIRouter(prefix="/api/v1", tags=["spacely"], route_class=JsonBodyRoute)

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


@router.post("/generate/decoration-placement", response_model=SubmittedOut, responses=ERRORS,
             summary="Put a decoration (a frame, a mirror...) on the wall at its true size, scaled "
                     "from a reference line of known length")
def generate_decoration_placement(request: Request, body: DecorationPlacementBody,
                                  key: Key) -> dict[str, str]:
    return _submit(request, key, decoration_placement_request(body))


_PERSPECTIVE_BODY = Body(openapi_examples={
    "two-point": {"summary": "two walls seen from a corner", "value": {
        "imageUrl": "https://example.com/room.jpg",
        "topCornerLine": [{"x": 27, "y": 131}, {"x": 318, "y": 169}, {"x": 512, "y": 133}],
        "bottomCornerReferenceLine": [{"x": 121, "y": 361}, {"x": 318, "y": 329},
                                      {"x": 437, "y": 356}],
        "roomHeight": 2.7}},
    "one-point": {"summary": "a room seen straight on", "value": {
        "imageUrl": "https://example.com/room.jpg",
        "topLeftLine": [{"x": 211, "y": 166}, {"x": 133, "y": 113}],
        "topRightLine": [{"x": 442, "y": 166}, {"x": 529, "y": 113}],
        "bottomLeftLine": [{"x": 211, "y": 333}, {"x": 133, "y": 400}],
        "bottomRightLine": [{"x": 442, "y": 333}, {"x": 529, "y": 400}],
        "roomHeight": 2.6}}})


@router.post("/generate/two-point-perspective", response_model=SubmittedOut, responses=ERRORS,
             summary="The room's wall lengths and height drawn on the photo as dimension lines: "
                     "two walls from a corner, or (with the one-point fields) a room seen straight on")
def generate_two_point_perspective(
        request: Request, key: Key,
        body: Annotated[dict[str, Any], _PERSPECTIVE_BODY]) -> dict[str, str]:
    # Read by hand: the two bodies are told apart by their fields (see perspective_body).
    return _submit(request, key, perspective_request(perspective_body(body)))


@router.post("/generate/one-point-perspective", response_model=SubmittedOut, responses=ERRORS,
             summary="The room's width, depth and height drawn on the photo as dimension lines, "
                     "for a room seen straight on")
def generate_one_point_perspective(request: Request, body: OnePointPerspectiveBody,
                                   key: Key) -> dict[str, str]:
    return _submit(request, key, perspective_request(body))


@router.get("/generate/poll-result", response_model=PollOut, response_model_exclude_none=True,
            responses=ERRORS,
            summary="A generation's status: processing (with progress), success (with the "
                    "result URLs) or failed (with a message)")
async def poll_result(request: Request, key: Key,
                      refId: Annotated[str, Query(min_length=1, max_length=64,  # noqa: N803
                                                  description="the refId a generate call answered")]
                      ) -> dict[str, Any]:
    try:
        job = await read_job(services(request), key, refId)
    except NotFound:
        raise NotFound(f"refId {refId!r} was not found for this API key") from None
    return result_body(job)


@router.get("/resources", summary="The accepted models, space types, styles, colour sets, "
            "materials and areas, and which endpoints this server's engine runs")
def spacely_resources(request: Request) -> dict[str, Any]:
    svc = services(request)
    return resources_body(svc.engine.supported_tasks(), svc.settings.spacely_standard_variants)
