"""Luw.ai's data: its generators (and the canonical task of each), its style and room names
(data/luw.json) and the OpenAPI description of its parameters. `requests.py` reads a call's
parameters and translates them with these.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from roomrender.canonical.models import Task
from roomrender.catalog import load_data_file

# Generators of the service that this server runs, and the canonical task of each.
MODELS: dict[str, Task] = {
    "interior": Task.restyle,
    "exterior": Task.restyle,
    "sketch": Task.sketch_render,
    "render": Task.sketch_render,
    "removefurniture": Task.empty_room,
    "magicwand": Task.edit,
    "enhance": Task.upscale,
    "expand": Task.expand,
    "segment": Task.segment,
    "segmentprompt": Task.segment,
    "removebg": Task.cutout,
    "video": Task.video,
    "motion": Task.video,
    "3dgen": Task.object_3d,
    "vector": Task.vectorize,
    "pattern": Task.pattern,
    "changebg": Task.change_background,
    "moodboard": Task.moodboard,
    "fluw": Task.text_to_image,
    # Painted as fluw, then traced (a vectorize with a prompt).
    "fluwvector": Task.vectorize,
    # An instruction ("make the sofa green") applied to the photo (its references: not yet).
    "magicprompt": Task.instruct,
    # A garden, yard or facade restyled (the catalog's outdoor styles: English Garden, Modern Facade...).
    "landscape": Task.restyle,
    # Synchronous: the answer in words at once (routes.py waits for the job).
    "archigpt": Task.chat,
}
# Generators of the service that this server does not run yet (shared/api/luw.md, and the
# official client's MODEL_IDS): answered "not yet supported", never "unknown".
OTHER_MODELS: frozenset[str] = frozenset()
# Luw's video generators. `motion`, the older one, takes no style: its clip is a slow push in.
VIDEO_MODELS = frozenset({"video", "motion"})
MOTION_CAMERA_MOVE = "dolly_in"
# The events Luw calls a webhook for (the plug registers them; requests record them).
WEBHOOK_EVENTS = ("job.succeeded", "job.failed")
FORMATS = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}
HD_SCALES = (2, 4, 8)
# pattern's `texture`: the tile's side in pixels.
TEXTURE_SIDES = {-1: 512, 0: 768, 1: 1024}
MAX_EXTRA_IMAGES = 6


def _params_schema(properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An OpenAPI request body of these parameters, as JSON or a form (the wire takes both)."""
    schema = {"type": "object", "properties": properties}
    return {"requestBody": {"required": False, "content": {
        "application/json": {"schema": schema},
        "application/x-www-form-urlencoded": {"schema": schema}}}}


_TEXT: dict[str, Any] = {"type": "string"}
# What /v2/generate reads (documentation of the wire; `to_request` is the translation).
GENERATE_OPENAPI = _params_schema({
    "model": {"type": "string", "enum": sorted(MODELS) + sorted(OTHER_MODELS)},
    "image": {"type": "string", "description": "an image URL (or a data URI, an upload's final_url)"},
    "prompt": {"type": "string", "maxLength": 2000},
    "styles": {"type": "string", "description": "comma-separated style names (/v2/styles)"},
    "knows": {"type": "string", "description": "comma-separated room or building types"},
    "style_transfer": _TEXT, "mask_image": _TEXT, "material_image": _TEXT,
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    "precise": {"type": "integer", "minimum": 1, "maximum": 100},
    "hd": {"type": "integer", "enum": list(HD_SCALES)},
    "aspect_ratio": {"type": "string", "enum": ["16:9", "3:2", "4:3", "1:1", "3:4", "2:3", "9:16"],
                     "description": "fluw: the picture's shape"},
    # One name, two meanings by model.
    "texture": {"type": ["integer", "boolean"],
                "description": "pattern: the tile's side, -1 → 512 px, 0 → 768, 1 → 1024; "
                               "3dgen: a base-colour texture (default true)"},
    "format": {"type": "string", "enum": sorted(FORMATS)},
    "num_images": {"type": "integer", "minimum": 1, "maximum": 8},
    "fill_room": {"type": "boolean"}, "remove": {"type": "boolean"},
    "controlnet": {"type": "boolean"},
    "simplify": {"type": "integer", "minimum": 12, "maximum": 500000,
                 "description": "3dgen: the most faces the model may have"},
    "reflect": {"type": "boolean", "description": "3dgen: a glossy, reflective finish"},
    "webhook": {"type": "string", "maxLength": 2048},
    "enhance_prompt": {"type": "boolean"},
    "lang": {"type": "string", "description": "archigpt: the answer's language (en, fr, de-CH...)"},
    "conversation": {"type": "string", "description": "archigpt: the id of the answer this "
                                                      "question follows up (roomrender's own)"},
    "duration": {"type": "number", "minimum": 2, "maximum": 10,
                 "description": "video, motion: the clip's seconds (roomrender's own; default 5)"},
    "fps": {"type": "integer", "minimum": 8, "maximum": 30,
            "description": "video, motion: frames a second (roomrender's own; default 24)"},
    "resolution": {"type": "string", "enum": ["480p", "720p", "1080p"],
                   "description": "video, motion: roomrender's own; default 720p"},
    "luwmodel": {"type": "string", "description": "Luw's model tier (video: the clip is this "
                                                  "server's either way)"},
    "processing_url": {"type": "string", "description": "poll this generation instead"},
    **{f"extra_image_{index}": _TEXT for index in range(1, MAX_EXTRA_IMAGES + 1)},
})
RESULTS_OPENAPI = _params_schema({"processing_url": {"type": "string"}})
UPLOAD_OPENAPI = _params_schema({"filename": {"type": "string", "examples": ["room.jpg"]}})


# -- names of the service ↔ canonical ids ------------------------------------------------------

@cache
def luw_data() -> dict[str, Any]:
    return load_data_file("luw.json")  # type: ignore[no-any-return]


@cache
def style_ids() -> dict[str, str]:
    return {entry["name"]: entry["id"] for entry in luw_data()["styles"]}


@cache
def room_ids() -> dict[str, str]:
    knows = luw_data()["knows"]
    return {entry["name"]: entry["id"] for entry in knows["interior"] + knows["exterior"]}


@cache
def video_style_moves() -> dict[str, str]:
    """Luw's video style names → canonical camera moves."""
    return {entry["name"]: entry["camera"] for entry in luw_data()["video_styles"]}
