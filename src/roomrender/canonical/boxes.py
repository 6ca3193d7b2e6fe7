"""Boxes in pixels of the input photo, origin top-left: where a product goes (`placement`) and
what a `place` may change (`area`). Their checks against the photo's size live here, once."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# A product scaled into fewer pixels than this is a speck, not furniture.
MIN_PLACEMENT_SIDE = 8
# Without an `area`, a place may change its placement and this much around it (of its size).
DEFAULT_AREA_MARGIN = 0.25


class Box(BaseModel):
    """A rectangle in pixels of the input photo, origin top-left."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    x: int = Field(ge=0, description="left edge")
    y: int = Field(ge=0, description="top edge")
    w: int = Field(ge=1, description="width")
    h: int = Field(ge=1, description="height")

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    def corners(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom), as PIL's crop and paste take it."""
        return (self.x, self.y, self.right, self.bottom)

    def contains(self, other: Box) -> bool:
        return (self.x <= other.x and self.y <= other.y and other.right <= self.right
                and other.bottom <= self.bottom)

    def describe(self) -> str:
        return f"{{x: {self.x}, y: {self.y}, w: {self.w}, h: {self.h}}}"


def default_area(placement: Box, width: int, height: int) -> Box:
    """The placement and a margin around it, within the photo."""
    dx, dy = round(placement.w * DEFAULT_AREA_MARGIN), round(placement.h * DEFAULT_AREA_MARGIN)
    left, top = max(0, placement.x - dx), max(0, placement.y - dy)
    right, bottom = min(width, placement.right + dx), min(height, placement.bottom + dy)
    return Box(x=left, y=top, w=max(1, right - left), h=max(1, bottom - top))


def placement_problem(placement: Box, area: Box | None, width: int, height: int) -> str | None:
    """Why these boxes cannot place a product into a `width` x `height` photo, or None."""
    for name, box in (("placement", placement), ("area", area)):
        if box is not None and (box.right > width or box.bottom > height):
            return (f"{name} {box.describe()} reaches outside the photo, which is {width}x{height} "
                    "pixels (boxes are in pixels of the room photo, origin top-left)")
    if min(placement.w, placement.h) < MIN_PLACEMENT_SIDE:
        return (f"placement {placement.describe()} is too small: a product needs at least "
                f"{MIN_PLACEMENT_SIDE}x{MIN_PLACEMENT_SIDE} pixels")
    if area is not None and not area.contains(placement):
        return (f"placement {placement.describe()} must lie inside area {area.describe()}: "
                "only the area may change")
    return None
