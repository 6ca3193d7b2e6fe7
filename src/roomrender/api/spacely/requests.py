"""Spacely's request bodies (wire in) and their translation into the canonical GenerationRequest;
validation errors are told in Spacely's field names."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from roomrender.api.deps import describe_validation_errors
from roomrender.api.spacely.resources import pick, resources
from roomrender.canonical.errors import InvalidRequest
from roomrender.canonical.models import (
    MAX_MATERIALS,
    MAX_NAME_LENGTH,
    MAX_PROMPT_LENGTH,
    GenerationRequest,
    Task,
)
from roomrender.canonical.perspective import MAX_LENGTH, Surface
from roomrender.catalog import find_room_type

# The canonical request's length limits, on the wire (so that the schema tells them).
WireName = Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH)]
WirePrompt = Annotated[str, StringConstraints(max_length=MAX_PROMPT_LENGTH)]
WireMaterials = (Annotated[list[WireName], Field(max_length=MAX_MATERIALS)]
                 | Annotated[str, StringConstraints(max_length=MAX_MATERIALS * (MAX_NAME_LENGTH + 1))]
                 | None)

# The events Spacely calls a webhook for (the plug registers them; requests record them).
WEBHOOK_EVENTS = ("job.succeeded", "job.failed")
# Canonical field names in core messages, as a Spacely client knows them.
WIRE_NAMES = {"image": "imageUrl", "negative_prompt": "nPrompt", "webhook": "webhookUrl",
              "product_image": "productImageUrl", "room_height": "roomHeight"}


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


class WirePoint(BaseModel):
    """A point on the room photo, in pixels, origin top-left."""

    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)

    def canonical(self) -> dict[str, float]:
        return {"x": self.x, "y": self.y}


class Corner(BaseModel):
    """The decoration's top-left corner; `w` and `h` are accepted and not read: the true size
    decides them."""

    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)
    w: float | None = Field(None, allow_inf_nan=False)
    h: float | None = Field(None, allow_inf_nan=False)


Length = Annotated[float, Field(gt=0, le=MAX_LENGTH, allow_inf_nan=False)]
TwoPoints = Annotated[list[WirePoint], Field(min_length=2, max_length=2)]
ThreePoints = Annotated[list[WirePoint], Field(min_length=3, max_length=3)]


class DecorationPlacementBody(_Body):
    imageUrl: str = Field(description="URL of the room photo", examples=["https://example.com/room.jpg"])
    productImageUrl: str = Field(description="URL of the decoration, a PNG with no background",
                                 examples=["https://example.com/frame.png"])
    productWidth: Length = Field(description="the PNG's real width, in the unit of lineLength",
                                 examples=[60])
    productHeight: Length = Field(description="the PNG's real height, in the unit of lineLength",
                                  examples=[90])
    referenceLine: TwoPoints = Field(description="two points on the wall, a horizontal line along "
                                     "it or a vertical one, of known length (on the floor, for "
                                     "surface 'floor')")
    lineLength: Length = Field(description="the reference line's real length", examples=[200])
    placement: Corner = Field(description="the decoration's top-left corner on the photo")
    surface: Surface = Field("wall", description="roomrender's addition (Spacely's docs name no "
                             "field for it): 'floor' lays the decoration flat on the floor (a "
                             "rug), the reference line then on the floor, productWidth along it, "
                             "productHeight across it towards the camera, placement its far-left "
                             "corner")


class TwoPointPerspectiveBody(_Body):
    imageUrl: str = Field(description="URL of the room photo", examples=["https://example.com/room.jpg"])
    topCornerLine: ThreePoints = Field(description="the top-left, middle and top-right corners "
                                       "where two walls meet the ceiling")
    bottomCornerReferenceLine: ThreePoints = Field(
        description="a point on the left floor line 1 m in from the bottom-left corner, the "
                    "middle bottom corner, a point on the right floor line 1 m in from the "
                    "bottom-right corner")
    roomHeight: Length = Field(description="the room's height in metres", examples=[2.7])


class OnePointPerspectiveBody(_Body):
    imageUrl: str = Field(description="URL of the room photo", examples=["https://example.com/room.jpg"])
    topLeftLine: TwoPoints = Field(description="the far point (a back-wall corner) first, the near one second")
    topRightLine: TwoPoints
    bottomLeftLine: TwoPoints
    bottomRightLine: TwoPoints
    roomHeight: Length = Field(description="the room's height in metres", examples=[2.7])


ONE_POINT_FIELDS = ("topLeftLine", "topRightLine", "bottomLeftLine", "bottomRightLine")


def perspective_body(raw: object) -> TwoPointPerspectiveBody | OnePointPerspectiveBody:
    """A perspective body, told apart by its fields: the one-point lines, or the two-point ones
    (Spacely documents both at /generate/two-point-perspective)."""
    if not isinstance(raw, dict):
        raise InvalidRequest("the body must be a JSON object")
    one_point = any(name in raw for name in ONE_POINT_FIELDS)
    model: type[TwoPointPerspectiveBody | OnePointPerspectiveBody] = (
        OnePointPerspectiveBody if one_point else TwoPointPerspectiveBody)
    try:
        return model.model_validate(raw)
    except ValidationError as invalid:
        raise InvalidRequest(describe_validation_errors(
            [{"loc": item["loc"], "msg": item["msg"]} for item in invalid.errors()])) from None


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


def _points(points: list[WirePoint]) -> list[dict[str, float]]:
    return [point.canonical() for point in points]


def decoration_placement_request(body: DecorationPlacementBody) -> GenerationRequest:
    true_size = {"reference_line": _points(body.referenceLine), "line_length": body.lineLength,
                 "width": body.productWidth, "height": body.productHeight,
                 "at": {"x": body.placement.x, "y": body.placement.y}, "surface": body.surface}
    return canonical(task=Task.place, image=body.imageUrl, product_image=body.productImageUrl,
                     true_size=true_size, **_webhook(body))


def perspective_request(body: TwoPointPerspectiveBody | OnePointPerspectiveBody) -> GenerationRequest:
    room: dict[str, Any]
    if isinstance(body, TwoPointPerspectiveBody):
        room = {"kind": "two_point", "top": _points(body.topCornerLine),
                "floor": _points(body.bottomCornerReferenceLine)}
    else:
        room = {"kind": "one_point", "top_left": _points(body.topLeftLine),
                "top_right": _points(body.topRightLine), "bottom_left": _points(body.bottomLeftLine),
                "bottom_right": _points(body.bottomRightLine)}
    return canonical(task=Task.measure, image=body.imageUrl, room=room, room_height=body.roomHeight,
                     **_webhook(body))
