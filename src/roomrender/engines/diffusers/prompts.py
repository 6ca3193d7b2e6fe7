"""Room type and style become prompts, from one data file of templates (data/prompts.json)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from roomrender.canonical.models import GenerationRequest, Task
from roomrender.catalog import find_room_type, find_style, load_data_file
from roomrender.engines.enhancing import enhanced


@dataclass(frozen=True)
class Prompt:
    positive: str
    negative: str


@cache
def templates() -> dict[str, Any]:
    found: dict[str, Any] = load_data_file("prompts.json")
    return found


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def color_name(color: str) -> str:
    """The nearest named colour: text encoders know `sage green`, not `#A3B18A`."""
    target = _rgb(color)
    named: dict[str, str] = templates()["colors"]
    return min(named, key=lambda name: sum((a - b) ** 2 for a, b in zip(_rgb(named[name]), target, strict=True)))


def _template_key(request: GenerationRequest) -> str:
    if request.task == Task.restyle and request.exterior:
        return "restyle_exterior"
    if request.task == Task.edit and request.remove:
        return "edit_remove"
    return request.task.value


def build_prompt(request: GenerationRequest) -> Prompt:
    # enhance_prompt not yet done by the language model: the catalog's deterministic expansion.
    request = enhanced(request)
    data = templates()
    template = data["tasks"].get(_template_key(request), {"prompt": ""})
    style = find_style(request.style)
    room = find_room_type(request.room_type)
    style_words = data["styles"].get(style.id) if style else None
    room_words = data["rooms"].get(room.id) if room else None
    exterior = request.exterior or (room is not None and room.exterior)
    subject = request.prompt or ", ".join(request.materials) or ""
    values = {
        "style": style.name.lower() if style else "",
        "style_description": style_words or (style.description.lower() if style else ""),
        "room": room_words or (room.name.lower() if room else data["rooms"]["_exterior" if exterior else "_interior"]),
        "prompt": subject,
        "materials": ", ".join(request.materials),
        "palette": request.palette or "",
        "area": f"{request.surface or 'wall'}s" if (request.surface or "wall") == "wall" else (request.surface or ""),
        "color_name": color_name(request.color) if request.color else "",
    }
    positive = template["prompt"].format(**values)
    extras = []
    if request.task not in (Task.text_to_image, Task.edit) and request.prompt:
        extras.append(request.prompt)
    if request.task != Task.edit and request.materials:
        extras.append("materials: " + ", ".join(request.materials))
    if request.palette:
        extras.append(f"{request.palette} colour palette")
    if request.task == Task.text_to_image and style:
        extras.append(f"{style.name.lower()} style, {values['style_description']}")
    positive = ", ".join(part for part in [positive, *extras] if part)
    negative = ", ".join(part for part in [template.get("negative", ""), data["negative"],
                                           request.negative_prompt or ""] if part)
    return Prompt(_tidy(positive), _tidy(negative))


def _tidy(text: str) -> str:
    """Drop the empty slots a template leaves (`a photo of a  room, , interior`)."""
    parts = [" ".join(part.split()) for part in text.split(",")]
    return ", ".join(part for part in parts if part)
