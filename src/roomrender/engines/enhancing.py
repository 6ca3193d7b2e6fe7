"""enhance_prompt, its one home: a prompt rewritten into a richer one before rendering.

With a language model (the `chat` task's assistant), the model rewrites it (`REWRITE_INSTRUCTION`).
Without one, a deterministic expansion from the catalog's vocabulary (data/catalog.json), always
the same words for the same request:

    <prompt>, <style> style (<its description>), <room type>, <QUALITY_WORDS>

The style and the room type are the request's own, else the first catalog style and room type
whose name the prompt contains (`a cosy scandinavian bedroom` → Scandinavian, Bedroom); a part
the prompt already says (case aside) is not said twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from roomrender.canonical.models import GenerationRequest
from roomrender.catalog import RoomType, Style, find_room_type, find_style, room_types, styles

QUALITY_WORDS = ("interior design photograph", "natural light", "balanced composition",
                 "realistic materials and textures", "high detail")
REWRITE_INSTRUCTION = (
    "Rewrite this image prompt for an interior-design picture into one richer prompt: keep what "
    "it asks, add materials, light and composition, at most 60 words, and answer with the prompt "
    "alone.")
# A rewriting model's answer is trusted only within this length (else the expansion is used).
MAX_REWRITE_CHARS = 1000


def _named_in(text: str, names: dict[str, str]) -> str | None:
    """The id of the longest catalog name found in `text` as whole words."""
    lowered = text.lower()
    found = [(len(name), ident) for ident, name in names.items()
             if re.search(rf"\b{re.escape(name.lower())}\b", lowered)]
    return max(found)[1] if found else None


def _style_of(request: GenerationRequest, prompt: str) -> Style | None:
    style = find_style(request.style)
    if style is not None:
        return style
    ident = _named_in(prompt, {s.id: s.name for s in styles().values()})
    return styles()[ident] if ident else None


def _room_of(request: GenerationRequest, prompt: str) -> RoomType | None:
    room = find_room_type(request.room_type)
    if room is not None:
        return room
    ident = _named_in(prompt, {r.id: r.name for r in room_types().values()})
    return room_types()[ident] if ident else None


def expanded_prompt(request: GenerationRequest) -> str:
    """The deterministic expansion of the request's prompt (see the module's text)."""
    prompt = " ".join((request.prompt or "").split())
    parts = [prompt] if prompt else []
    style = _style_of(request, prompt)
    if style is not None:
        parts.append(f"{style.name.lower()} style ({style.description.lower()})")
    room = _room_of(request, prompt)
    if room is not None and room.name.lower() not in prompt.lower():
        parts.append(room.name.lower())
    parts.extend(word for word in QUALITY_WORDS if word not in prompt.lower())
    return ", ".join(parts)


def enhanced(request: GenerationRequest, rewrite: Callable[[str], str] | None = None) -> GenerationRequest:
    """The request with its prompt enhanced when it asks (`enhance_prompt`), else itself.
    `rewrite`: a language model's rewriting of a prompt (given REWRITE_INSTRUCTION's task)."""
    if not request.enhance_prompt or not request.prompt:
        return request
    prompt: str | None = None
    if rewrite is not None:
        answer = " ".join(rewrite(request.prompt).split())
        prompt = answer if 0 < len(answer) <= MAX_REWRITE_CHARS else None
    prompt = prompt or expanded_prompt(request)
    return request.model_copy(update={"prompt": prompt[:2000], "enhance_prompt": False})
