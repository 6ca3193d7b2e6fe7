"""The canonical styles and room types (data/catalog.json), shared by engines and dialects."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Style:
    id: str
    name: str
    description: str
    palette: tuple[str, ...]
    saturation: float
    contrast: float
    warmth: float
    # A garden, yard or facade style (Luw's landscape), and the ADE20K classes (data/ade20k.json)
    # a restyle keeps as they are (the house, its windows, the paths).
    outdoor: bool = False
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoomType:
    id: str
    name: str
    exterior: bool


def load_data_file(name: str) -> Any:
    return json.loads(resources.files("roomrender").joinpath("data", name).read_text("utf-8"))


def normalise(name: str) -> str:
    """`Mid-Century Modern` → `mid_century_modern`."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


@cache
def styles() -> dict[str, Style]:
    return {
        entry["id"]: Style(entry["id"], entry["name"], entry["description"], tuple(entry["palette"]),
                           **entry["finish"], outdoor=bool(entry.get("outdoor", False)),
                           keep=tuple(entry.get("keep", ())))
        for entry in load_data_file("catalog.json")["styles"]
    }


@cache
def room_types() -> dict[str, RoomType]:
    return {
        entry["id"]: RoomType(entry["id"], entry["name"], entry["exterior"])
        for entry in load_data_file("catalog.json")["room_types"]
    }


def find_style(name: str | None) -> Style | None:
    if not name:
        return None
    return styles().get(normalise(name))


def find_room_type(name: str | None) -> RoomType | None:
    if not name:
        return None
    return room_types().get(normalise(name))
