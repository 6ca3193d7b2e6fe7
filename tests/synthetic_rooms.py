"""Box rooms of known size seen by a known level pinhole camera: their corners projected, their
edges drawn, and where a frame on a wall or a rug on the floor lands. The ground truth of the metrology tests.

World: x right, y down (the floor at y = camera height), z forward; the camera at the origin,
turned `yaw` degrees about the vertical.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from roomrender.canonical.metrology import DEFAULT_FOCAL_RATIO

Pixel = tuple[float, float]


@dataclass(frozen=True)
class Camera:
    width: int = 640
    height: int = 480
    focal_ratio: float = DEFAULT_FOCAL_RATIO
    yaw: float = 0.0  # degrees; positive turns the camera towards +x

    @property
    def focal(self) -> float:
        return self.focal_ratio * self.width

    def project(self, point: tuple[float, float, float]) -> Pixel:
        theta = math.radians(self.yaw)
        x, y, z = point
        right = x * math.cos(theta) - z * math.sin(theta)
        forward = x * math.sin(theta) + z * math.cos(theta)
        assert forward > 0, "the point is behind the camera"
        return (self.width / 2 + self.focal * right / forward,
                self.height / 2 + self.focal * y / forward)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def draw_edges(camera: Camera, edges: list[tuple[Pixel, Pixel]]) -> Image.Image:
    image = Image.new("RGB", (camera.width, camera.height), (214, 208, 198))
    draw = ImageDraw.Draw(image)
    for start, end in edges:
        draw.line([start, end], fill=(60, 55, 50), width=2)
    return image


@dataclass(frozen=True)
class CornerRoom:
    """Two walls seen from a corner (two-point perspective): the left wall runs along x
    (`width` long, at z = corner_z), the right wall along z (`depth` long, at x = corner_x)."""

    camera: Camera
    width: float = 4.2
    depth: float = 3.4
    height: float = 2.7
    camera_height: float = 1.5
    corner_x: float = 5.0
    corner_z: float = 6.0

    def at(self, x: float, z: float, above_floor: float = 0.0) -> Pixel:
        return self.camera.project((x, self.camera_height - above_floor, z))

    def top(self) -> list[Pixel]:
        h, cx, cz = self.height, self.corner_x, self.corner_z
        return [self.at(cx - self.width, cz, h), self.at(cx, cz, h), self.at(cx, cz - self.depth, h)]

    def floor_marks(self) -> list[Pixel]:
        cx, cz = self.corner_x, self.corner_z
        return [self.at(cx - self.width + 1.0, cz), self.at(cx, cz), self.at(cx, cz - self.depth + 1.0)]

    def photo(self) -> Image.Image:
        cx, cz = self.corner_x, self.corner_z
        bottom = [self.at(cx - self.width, cz), self.at(cx, cz), self.at(cx, cz - self.depth)]
        top = self.top()
        edges = [(top[0], top[1]), (top[1], top[2]), (bottom[0], bottom[1]), (bottom[1], bottom[2])]
        edges += list(zip(top, bottom, strict=True))
        return draw_edges(self.camera, edges)

    def left_wall_point(self, along: float, above_floor: float) -> Pixel:
        """A point on the left wall, `along` in from its left end."""
        return self.at(self.corner_x - self.width + along, self.corner_z, above_floor)

    def floor_point(self, along: float, out: float) -> Pixel:
        """A point on the floor, `along` in from the left wall's left end and `out` from that
        wall towards the camera."""
        return self.at(self.corner_x - self.width + along, self.corner_z - out)


@dataclass(frozen=True)
class StraightRoom:
    """A room seen straight on (one-point perspective): the back wall `width` wide at `far_z`,
    its side edges drawn from `near_z` (`depth` nearer) to it."""

    camera: Camera
    width: float = 3.6
    depth: float = 3.0
    height: float = 2.6
    camera_height: float = 1.45
    left_x: float = -1.7
    far_z: float = 7.2

    def at(self, x: float, z: float, above_floor: float = 0.0) -> Pixel:
        return self.camera.project((x, self.camera_height - above_floor, z))

    def lines(self) -> dict[str, list[Pixel]]:
        left, right, h = self.left_x, self.left_x + self.width, self.height
        far, near = self.far_z, self.far_z - self.depth
        return {"top_left": [self.at(left, far, h), self.at(left, near, h)],
                "top_right": [self.at(right, far, h), self.at(right, near, h)],
                "bottom_left": [self.at(left, far), self.at(left, near)],
                "bottom_right": [self.at(right, far), self.at(right, near)]}

    def photo(self) -> Image.Image:
        lines = self.lines()
        far = [lines[name][0] for name in ("top_left", "top_right", "bottom_right", "bottom_left")]
        edges = [(start, end) for start, end in lines.values()]
        edges += [(far[i], far[(i + 1) % 4]) for i in range(4)]
        return draw_edges(self.camera, edges)

    def back_wall_point(self, along: float, above_floor: float) -> Pixel:
        return self.at(self.left_x + along, self.far_z, above_floor)

    def floor_point(self, along: float, out: float) -> Pixel:
        """A point on the floor, `along` in from the left wall and `out` from the back wall."""
        return self.at(self.left_x + along, self.far_z - out)


def box_of(points: list[Pixel]) -> tuple[float, float]:
    """The width and height of the points' bounding box, in pixels."""
    xs, ys = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    return float(xs.max() - xs.min()), float(ys.max() - ys.min())
