"""Luw.ai wire parameters → the canonical GenerationRequest.

Luw clients send the same fields as a query string, a form (urlencoded or multipart) or a JSON
object, and values arrive as strings ("true", "90") or as JSON scalars; everything is read into
one flat dict first, then translated here.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from pydantic import ValidationError

from roomrender.api.deps import describe_json_error, describe_validation_errors
from roomrender.api.luw.params import (
    FORMATS,
    HD_SCALES,
    MAX_EXTRA_IMAGES,
    MODELS,
    MOTION_CAMERA_MOVE,
    OTHER_MODELS,
    TEXTURE_SIDES,
    VIDEO_MODELS,
    WEBHOOK_EVENTS,
    room_ids,
    style_ids,
    video_style_moves,
)
from roomrender.canonical.errors import InvalidRequest, Unsupported
from roomrender.canonical.models import GenerationRequest, Task
from roomrender.workspace.personas import Conditioning

TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off", ""}


@dataclass(frozen=True)
class FilePart:
    """A file sent in a multipart body."""

    filename: str | None
    content_type: str | None
    data: bytes

    def data_uri(self) -> str:
        kind = self.content_type or "application/octet-stream"
        return f"data:{kind};base64,{base64.b64encode(self.data).decode('ascii')}"



# -- reading ------------------------------------------------------------------------------

async def read_params(request: Request) -> dict[str, Any]:
    """The query string and the body (JSON, urlencoded or multipart form), body winning.

    The body is read by hand so that a GET with a form body (Luw's own cURL example for
    /v2/results) works as well as a POST.
    """
    params: dict[str, Any] = dict(request.query_params)
    # Its size is capped by roomrender.api.guards.BodyLimit while it streams in.
    body = await request.body()
    if not body.strip():
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()
        for name, value in form.multi_items():
            if isinstance(value, str):
                params[name] = value
            else:
                params[name] = FilePart(value.filename, value.content_type, await value.read())
        return params
    looks_like_json = body.lstrip()[:1] in (b"{", b"[")
    if content_type == "application/json" or content_type.endswith("+json") or (
            content_type in ("", "text/plain") and looks_like_json):
        try:
            data = json.loads(body)
        except ValueError as broken:
            raise InvalidRequest(describe_json_error(broken)) from None
        except RecursionError:  # nested too deep
            raise InvalidRequest("the request body is not valid JSON: it is nested too deep") from None
        if not isinstance(data, dict):
            raise InvalidRequest("the JSON body must be an object of parameters")
        params.update(data)
        return params
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as broken:
        raise InvalidRequest("the form body is not UTF-8 text") from broken
    params.update(parse_qsl(text, keep_blank_values=True))
    return params


# -- single values ------------------------------------------------------------------------

def text(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, FilePart):
        raise InvalidRequest(f"{name} must be a text value, not a file")
    if isinstance(value, (dict, list)):
        raise InvalidRequest(f"{name} must be a text value")
    value = str(value).strip()
    return value or None


def flag(params: dict[str, Any], name: str) -> bool:
    value = params.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)):
        return value != 0
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InvalidRequest(f"{name} must be true or false, not {str(value)[:40]!r}")


def integer(params: dict[str, Any], name: str) -> int | None:
    """A whole number sent as a JSON number or as text ("90", "90.0")."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidRequest(f"{name} must be a whole number")
    if isinstance(value, int):
        return value
    shown = str(value)[:40]
    try:
        number = value if isinstance(value, float) else float(str(value).strip())
    except (ValueError, OverflowError):
        raise InvalidRequest(f"{name} must be a whole number, not {shown!r}") from None
    if not number.is_integer():
        raise InvalidRequest(f"{name} must be a whole number, not {shown!r}")
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())  # exact, past float precision too
    return int(number)


def number(params: dict[str, Any], name: str) -> float | None:
    """A number sent as JSON or as text ("2.5")."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidRequest(f"{name} must be a number")
    try:
        return float(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a number, not {str(value)[:40]!r}") from None


def names(params: dict[str, Any], name: str) -> list[str]:
    """A comma-separated list (or a JSON list) of names."""
    value = params.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def image_ref(params: dict[str, Any], name: str) -> str | None:
    """An image: a URL (Luw's way), a data URI or upload id, or a file part of a multipart body."""
    value = params.get(name)
    if isinstance(value, FilePart):
        return value.data_uri()
    return text(params, name)


# -- names of the service → canonical ids -------------------------------------------------------

def style_id(name: str) -> str:
    """A Luw style name (case-sensitive, as on Luw) → a canonical style id."""
    found = style_ids().get(name)
    if found is None:
        raise InvalidRequest(
            f"unknown style {name[:64]!r} (names are case-sensitive); accepted: "
            + ", ".join(style_ids())
        )
    return found


def room_id(name: str) -> str:
    """A Luw room or building type → a canonical room type id."""
    found = room_ids().get(name)
    if found is None:
        folded = {key.casefold(): value for key, value in room_ids().items()}
        found = folded.get(name.casefold())
    if found is None:
        raise InvalidRequest(f"unknown knows value {name[:64]!r}; accepted: " + ", ".join(room_ids()))
    return found


def camera_move(name: str) -> str:
    """A Luw video style ("Flythrough Cinematic", as /v2/video_styles lists) → a camera move."""
    moves = video_style_moves()
    found = moves.get(name) or {key.casefold(): move for key, move in moves.items()}.get(name.casefold())
    if found is None:
        raise InvalidRequest(f"unknown video style {name[:64]!r}; accepted (GET /v2/video_styles): "
                             + ", ".join(moves))
    return found


# -- the translation ------------------------------------------------------------------------

def model_task(model: str | None) -> Task:
    if not model:
        raise InvalidRequest("model is required, e.g. model=interior; models: " + ", ".join(MODELS))
    if model in MODELS:
        return MODELS[model]
    if model in OTHER_MODELS:
        raise Unsupported(
            f"the model {model[:64]!r} is not yet supported by this server; supported models: "
            + ", ".join(MODELS),
            code="model_not_supported",
        )
    raise InvalidRequest(f"unknown model {model[:64]!r}; supported models: " + ", ".join(MODELS))


def with_persona(params: dict[str, Any], persona: Conditioning) -> dict[str, Any]:
    """A generate's parameters with what its persona (`pid`) brings: slot 7 as the `image` when
    none is given, its first style image (slots 1-6) as the `style_transfer` reference of an
    interior or exterior render that names none (the diffusers engine's IP-Adapter)."""
    merged = dict(params)
    if persona.default_input and not image_ref(params, "image"):
        merged["image"] = persona.default_input
    model = (text(params, "model") or "").lower()
    if persona.styles and model in ("interior", "exterior") and not image_ref(params, "style_transfer"):
        merged["style_transfer"] = persona.styles[0]
    return merged


def _magicprompt_limits(params: dict[str, Any], references: list[str]) -> None:
    """What of magicprompt this server does not do yet, refused plainly rather than ignored."""
    if references:
        raise Unsupported("magicprompt's reference images (extra_image_1..6, as IP-Adapter inputs) are "
                          "not supported by this server yet; send the image and the instruction alone",
                          code="model_not_supported")
    if params.get("hd") not in (None, ""):
        raise Unsupported("magicprompt's hd upscaling is not supported by this server yet; upscale the "
                          "result with model=enhance", code="model_not_supported")


def to_request(params: dict[str, Any]) -> GenerationRequest:
    """The canonical request for a Luw /v2/generate call."""
    model = text(params, "model")
    model = model.lower() if model else model
    task = model_task(model)
    fields: dict[str, Any] = {"task": task, "image": image_ref(params, "image"),
                              "webhook_events": list(WEBHOOK_EVENTS)}
    notes: list[str] = []

    video = model in VIDEO_MODELS
    if model == "motion":
        fields["camera"] = MOTION_CAMERA_MOVE
    elif video and names(params, "styles"):
        fields["camera"] = camera_move(names(params, "styles")[0])
    if video:
        # Accepted as Luw's clients send them: prompts go in as written, the tier is this server's.
        flag(params, "enhance_prompt")
        text(params, "luwmodel")
        # Not Luw parameters: roomrender's own, for the clip's length, rate and resolution.
        fields["duration"] = number(params, "duration")
        fields["fps"] = integer(params, "fps")
        fields["resolution"] = text(params, "resolution")
    styles = [] if video else [style_id(name) for name in names(params, "styles")]
    if styles:
        fields["style"] = styles[0]
        if len(styles) > 1:
            notes.append("blended with the styles " + ", ".join(names(params, "styles")[1:]))
    rooms = [room_id(name) for name in names(params, "knows")]
    if rooms:
        fields["room_type"] = rooms[0]
        if len(rooms) > 1:
            notes.append("also as " + ", ".join(names(params, "knows")[1:]))

    reference = image_ref(params, "style_transfer")
    if model == "interior" and flag(params, "fill_room"):
        fields.update(task=Task.stage, fill_room=True)
    elif model in ("interior", "exterior") and reference:
        fields["task"] = Task.style_transfer
    if reference:
        fields["reference_image"] = reference
    if model in ("exterior", "landscape"):
        fields["exterior"] = True

    if model == "magicwand":
        fields["mask"] = image_ref(params, "mask_image")
        fields["remove"] = flag(params, "remove")
        fields["keep_structure"] = flag(params, "controlnet")
        material = image_ref(params, "material_image")
        if material:
            fields["reference_image"] = material
    if model == "enhance":
        hd = integer(params, "hd")
        hd = 2 if hd is None else hd
        if hd not in HD_SCALES:
            raise InvalidRequest(f"hd must be 2, 4 or 8, not {hd}")
        fields["scale"] = hd

    if model == "3dgen":
        fields["texture"] = True if params.get("texture") is None else flag(params, "texture")
        fields["simplify"] = integer(params, "simplify")
        fields["glossy"] = flag(params, "reflect")
    if model == "pattern":
        texture = integer(params, "texture")
        texture = 0 if texture is None else texture
        if texture not in TEXTURE_SIDES:
            raise InvalidRequest(f"texture must be -1, 0 or 1, not {texture}")
        fields["width"] = fields["height"] = TEXTURE_SIDES[texture]

    if model == "archigpt":
        fields["lang"] = text(params, "lang")
        # Not a Luw parameter: roomrender's own, the job (a previous answer's `id`) it follows up.
        fields["conversation"] = text(params, "conversation")
    elif not video:
        fields["enhance_prompt"] = flag(params, "enhance_prompt")
    if model in ("fluw", "fluwvector"):
        # With `image`, the picture starts from that guide (image-to-image).
        fields["aspect_ratio"] = text(params, "aspect_ratio")

    prompt = text(params, "prompt")
    if model == "vector":
        # vector traces the image as it is (words would paint a new picture: that is fluwvector).
        prompt = None
    if model == "changebg" and not prompt:
        raise InvalidRequest("changebg needs a prompt describing the new scene (to remove the "
                             "background only, use model=removebg)")
    if model == "segmentprompt" and not prompt:
        raise InvalidRequest("segmentprompt needs a prompt naming what to segment, e.g. prompt=walls")
    if notes:
        prompt = "; ".join([prompt or "", *notes]).lstrip("; ")
    fields["prompt"] = prompt

    precise = integer(params, "precise")
    if precise is not None:
        if not 1 <= precise <= 100:
            raise InvalidRequest(f"precise must be between 1 and 100, not {precise}")
        # Higher precise keeps more of the original: strength (how much changes) = 1 - precise/100.
        fields["strength"] = round(1.0 - precise / 100.0, 4)
    seed = integer(params, "seed")
    if seed is not None:
        fields["seed"] = seed
    output_format = text(params, "format")
    if model == "fluwvector":
        # Its picture is traced: the answer is an SVG whatever raster format fluw would take.
        output_format = None
    if output_format is not None:
        if output_format.lower() not in FORMATS:
            raise InvalidRequest(f"format must be jpg, png or webp, not {output_format[:64]!r}")
        fields["output_format"] = FORMATS[output_format.lower()]
    if model == "removebg" and fields.get("output_format") == "jpeg":
        # Luw's removebg answers a transparent PNG; a JPEG cannot be transparent.
        fields["output_format"] = "png"
    # Not a Luw parameter: roomrender's own, for several images in one job.
    count = integer(params, "num_images") if "num_images" in params else integer(params, "n")
    if count is not None:
        fields["n"] = count
    if text(params, "webhook") is not None:
        # Kept exactly: clients put their own ids in its query string.
        fields["webhook"] = str(params["webhook"])

    extras = [image_ref(params, f"extra_image_{index}") for index in range(1, MAX_EXTRA_IMAGES + 1)]
    fields["extra_images"] = [ref for ref in extras if ref]
    if model == "magicprompt":
        _magicprompt_limits(params, fields["extra_images"])
    try:
        return GenerationRequest(**{key: value for key, value in fields.items() if value is not None})
    except ValidationError as invalid:
        errors = [{key: value for key, value in item.items() if key in ("loc", "msg", "type")}
                  for item in invalid.errors()]
        raise InvalidRequest(describe_validation_errors(errors)) from invalid
