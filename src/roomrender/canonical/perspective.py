"""The points a client marks on a photo for single-view metrology, in pixels of the photo (origin
top-left): a room's corners seen in two-point or one-point perspective (`measure`), and a
reference line of known length that gives a decoration its true size (`place`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Lengths a request may give, in its own unit (metres, centimetres, inches...).
MAX_LENGTH = 1e6


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)


Segment = Annotated[list[Point], Field(min_length=2, max_length=2)]
Triple = Annotated[list[Point], Field(min_length=3, max_length=3)]


class TwoPointRoom(BaseModel):
    """Two walls seen from a corner.

    `top`: the top-left corner, the middle corner and the top-right corner, where the walls meet
    the ceiling. `floor`: a point on the left wall's floor line 1 unit (of `room_height`) in from
    the bottom-left corner towards the middle, the middle bottom corner, and a point on the right
    wall's floor line 1 unit in from the bottom-right corner."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["two_point"] = "two_point"
    top: Triple
    floor: Triple


class OnePointRoom(BaseModel):
    """A room seen straight on: the four edges running from the back wall towards the camera,
    each as two points, the far one (a back-wall corner) first, the near one second."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["one_point"] = "one_point"
    top_left: Segment
    top_right: Segment
    bottom_left: Segment
    bottom_right: Segment


RoomLines = Annotated[TwoPointRoom | OnePointRoom, Field(discriminator="kind")]


Surface = Literal["wall", "floor"]


class TrueSize(BaseModel):
    """A product at its real size: `reference_line` on the photo is `line_length` long, the
    product is `width` x `height` in the same unit, its top-left corner at `at`.

    `surface` "wall": laid on the wall that holds the reference line (a horizontal line along
    the wall, or a vertical one), `height` downwards. "floor" (a rug): the reference line lies on
    the floor, the product lies flat on it, `width` along the line and `height` across it towards
    the camera, `at` its far-left corner."""

    model_config = ConfigDict(extra="forbid")
    reference_line: Segment
    line_length: float = Field(gt=0, le=MAX_LENGTH, allow_inf_nan=False)
    width: float = Field(gt=0, le=MAX_LENGTH, allow_inf_nan=False)
    height: float = Field(gt=0, le=MAX_LENGTH, allow_inf_nan=False)
    at: Point
    surface: Surface = "wall"
