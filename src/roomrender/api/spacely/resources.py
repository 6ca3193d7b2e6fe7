"""The Spacely dialect's enumerations (data/spacely.json) and their canonical meanings.

Spacely's full lists are not public, so they are data: one file, served at /api/v1/resources.
Every lookup answers InvalidRequest listing the accepted values when a value is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from roomrender.canonical.errors import InvalidRequest
from roomrender.canonical.models import Task
from roomrender.catalog import load_data_file


@dataclass(frozen=True)
class SpacelyResources:
    models: dict[str, Task]
    renovate_types: dict[str, bool]  # id → exterior
    space_types: dict[str, str]  # id → canonical room type
    space_styles: dict[str, str]  # id → canonical style
    space_colors: dict[str, tuple[str, ...]]  # id → hex colours
    materials: dict[str, str]  # id → name
    areas: tuple[str, ...]
    raw: dict[str, Any]


@cache
def resources() -> SpacelyResources:
    raw = load_data_file("spacely.json")
    return SpacelyResources(
        models={entry["id"]: Task(entry["task"]) for entry in raw["models"]},
        renovate_types={entry["id"]: entry["exterior"] for entry in raw["renovate_types"]},
        space_types={entry["id"]: entry["room_type"] for entry in raw["space_types"]},
        space_styles={entry["id"]: entry["style"] for entry in raw["space_styles"]},
        space_colors={entry["id"]: tuple(entry["colors"]) for entry in raw["space_colors"]},
        materials={entry["id"]: entry["name"] for entry in raw["materials"]},
        areas=tuple(entry["id"] for entry in raw["areas"]),
        raw=raw,
    )


def pick(field: str, value: str, accepted: dict[str, Any] | tuple[str, ...] | list[str]) -> str:
    """`value` itself when it is one of `accepted`, else a 400 that lists them."""
    if value in accepted:
        return value
    raise InvalidRequest(
        f"{field}: unknown value {value[:64]!r}; accepted: {', '.join(accepted)}",
        code="invalid_value",
    )
