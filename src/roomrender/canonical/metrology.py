"""Single-view metrology: real lengths from points marked on one photo.

The camera is taken as a pinhole held level (vertical edges stay vertical in the photo, as in
every one- and two-point perspective photo), its principal point at the photo's centre column
and on the horizon. The focal length comes from the two vanishing points of perpendicular walls
(two-point); where the marks give only one vanishing point (one-point, a single reference line)
it is taken as a phone's main camera, DEFAULT_FOCAL_RATIO x the photo's width. The scale comes
from a known length: the room's height, or the reference line.

Camera coordinates: x right, y down, z forward; image coordinates: x right, y down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from roomrender.canonical.boxes import Box
from roomrender.canonical.perspective import OnePointRoom, Point, TrueSize, TwoPointRoom

# A 26 mm (35 mm-equivalent) lens, a phone's main camera: f = 26/36 of the photo's width.
DEFAULT_FOCAL_RATIO = 26.0 / 36.0
# Lines closer to parallel than this (the sine of their angle) meet nowhere useful.
MIN_SINE = 1e-3
# A line within this angle of the vertical is read as a vertical edge (degrees).
VERTICAL_TOLERANCE = 5.0
# A marked point may lie this many pixels past the photo's edge (a click on the border).
EDGE_SLACK = 1.0


class GeometryError(ValueError):
    """The marks do not make a room (or a wall) that a level pinhole camera could have seen."""


Vector = np.ndarray


@dataclass(frozen=True)
class Camera:
    focal: float
    cx: float
    cy: float

    def ray(self, point: Point) -> Vector:
        return np.array([(point.x - self.cx) / self.focal, (point.y - self.cy) / self.focal, 1.0])

    def project(self, world: Vector) -> tuple[float, float]:
        if world[2] <= 0:
            raise GeometryError("a point of the result falls behind the camera")
        return (float(self.cx + self.focal * world[0] / world[2]),
                float(self.cy + self.focal * world[1] / world[2]))


@dataclass(frozen=True)
class Dimension:
    """A measured length and the two image points its dimension line joins."""

    name: str
    length: float
    start: tuple[float, float]
    end: tuple[float, float]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "length": round(self.length, 4),
                "from": {"x": round(self.start[0], 1), "y": round(self.start[1], 1)},
                "to": {"x": round(self.end[0], 1), "y": round(self.end[1], 1)}}


@dataclass(frozen=True)
class Measurement:
    """What `measure` finds: the room's dimensions, the lengths to draw, and how it got there."""

    perspective: str
    width: float
    depth: float
    height: float
    # The height the marks imply on their own (the 1 m references, or the near end), against
    # the height given: how far the marks agree with each other.
    height_check: float
    dimensions: tuple[Dimension, ...]
    focal_length: float
    vanishing_points: tuple[tuple[float, float], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "perspective": self.perspective,
            "width": round(self.width, 4), "depth": round(self.depth, 4),
            "height": round(self.height, 4), "height_check": round(self.height_check, 4),
            "height_check_error": round(abs(self.height_check - self.height) / self.height, 4),
            "dimensions": [dimension.as_dict() for dimension in self.dimensions],
            "focal_length_px": round(self.focal_length, 2),
            "vanishing_points": [{"x": round(x, 1), "y": round(y, 1)}
                                 for x, y in self.vanishing_points],
        }


# -- lines and points -----------------------------------------------------------------------------

def _homogeneous(point: Point) -> Vector:
    return np.array([point.x, point.y, 1.0])


def _line(a: Point, b: Point, what: str) -> Vector:
    if math.hypot(b.x - a.x, b.y - a.y) < 1.0:
        raise GeometryError(f"{what}: its two points are the same point")
    return np.cross(_homogeneous(a), _homogeneous(b))


def _meet(first: Vector, second: Vector, what: str) -> tuple[float, float]:
    """Where two image lines meet; parallel lines (no vanishing point) are refused."""
    point = np.cross(first, second)
    sine = abs(point[2]) / (np.linalg.norm(first[:2]) * np.linalg.norm(second[:2]))
    if sine < MIN_SINE:
        raise GeometryError(f"{what} are parallel in the photo: they have no vanishing point, so "
                            "they cannot be the edges of one wall seen in perspective")
    return float(point[0] / point[2]), float(point[1] / point[2])


def check_on_photo(points: dict[str, list[Point]], width: int, height: int) -> None:
    for name, marks in points.items():
        for point in marks:
            if not (-EDGE_SLACK <= point.x <= width + EDGE_SLACK
                    and -EDGE_SLACK <= point.y <= height + EDGE_SLACK):
                raise GeometryError(f"{name}: the point ({point.x:g}, {point.y:g}) is off the photo, "
                                    f"which is {width}x{height} pixels (origin top-left)")


def _on_plane_y(camera: Camera, point: Point, plane_y: float, what: str) -> Vector:
    """The point's ray met with the horizontal plane y = plane_y (the floor or the ceiling)."""
    ray = camera.ray(point)
    if abs(ray[1]) < 1e-9 or plane_y / ray[1] <= 0:
        side = "below" if plane_y > 0 else "above"
        raise GeometryError(f"{what} ({point.x:g}, {point.y:g}) must lie {side} the horizon "
                            f"(y = {camera.cy:.0f} here) to be on the "
                            f"{'floor' if plane_y > 0 else 'ceiling'}")
    point_3d: Vector = ray * (plane_y / ray[1])
    return point_3d


def _horizontal(a: Vector, b: Vector) -> float:
    return float(math.hypot(a[0] - b[0], a[2] - b[2]))


# -- measure: two-point -------------------------------------------------------------------------

def measure_two_point(room: TwoPointRoom, room_height: float, width: int, height: int) -> Measurement:
    check_on_photo({"the top corner line": room.top, "the bottom corner reference line": room.floor},
                   width, height)
    top_left, top_middle, top_right = room.top
    left_ref, bottom_middle, right_ref = room.floor
    left_vp = _meet(_line(top_left, top_middle, "the left wall's ceiling line"),
                    _line(left_ref, bottom_middle, "the left wall's floor line"),
                    "the left wall's ceiling and floor lines")
    right_vp = _meet(_line(top_middle, top_right, "the right wall's ceiling line"),
                     _line(bottom_middle, right_ref, "the right wall's floor line"),
                     "the right wall's ceiling and floor lines")
    horizon = (left_vp[1] + right_vp[1]) / 2
    cx = width / 2
    focal_squared = -((left_vp[0] - cx) * (right_vp[0] - cx) + (left_vp[1] - horizon) * (right_vp[1] - horizon))
    if focal_squared <= 0 or not (left_vp[0] < cx < right_vp[0] or right_vp[0] < cx < left_vp[0]):
        raise GeometryError("the two walls' vanishing points lie on the same side of the photo: "
                            "these lines are not two perpendicular walls seen from a corner")
    camera = Camera(math.sqrt(focal_squared), cx, horizon)
    corner_pixels = bottom_middle.y - top_middle.y
    if corner_pixels < 1.0:
        raise GeometryError("the middle bottom corner must lie below the middle top corner")
    # A vertical edge of length H at depth Z is f*H/Z pixels tall (a level camera).
    corner_depth = camera.focal * room_height / corner_pixels
    middle = camera.ray(bottom_middle) * corner_depth
    floor_y = float(middle[1])
    if floor_y <= 0:
        raise GeometryError("the middle bottom corner must lie below the horizon")
    ceiling_y = floor_y - room_height
    down = np.array([0.0, room_height, 0.0])
    bottom_left = _on_plane_y(camera, top_left, ceiling_y, "the top-left corner") + down
    bottom_right = _on_plane_y(camera, top_right, ceiling_y, "the top-right corner") + down
    left_mark = _on_plane_y(camera, left_ref, floor_y, "the left 1 m reference point")
    right_mark = _on_plane_y(camera, right_ref, floor_y, "the right 1 m reference point")
    left_wall, right_wall = _horizontal(bottom_left, middle), _horizontal(middle, bottom_right)
    references = (_horizontal(left_mark, bottom_left) + _horizontal(right_mark, bottom_right)) / 2
    if references <= 0:
        raise GeometryError("the 1 m reference points coincide with the bottom corners")
    project = camera.project
    top_middle_3d = middle - down
    dimensions = (
        Dimension("left wall", left_wall, project(bottom_left), project(middle)),
        Dimension("right wall", right_wall, project(middle), project(bottom_right)),
        Dimension("height", room_height, project(middle), project(top_middle_3d)),
    )
    return Measurement("two_point", width=left_wall, depth=right_wall, height=room_height,
                       height_check=room_height / references, dimensions=dimensions,
                       focal_length=camera.focal, vanishing_points=(left_vp, right_vp))


# -- measure: one-point -------------------------------------------------------------------------

def _common_point(lines: list[Vector]) -> tuple[float, float]:
    """The least-squares meeting point of several image lines (the one vanishing point)."""
    normals = np.array([line[:2] / np.linalg.norm(line[:2]) for line in lines])
    offsets = np.array([-line[2] / np.linalg.norm(line[:2]) for line in lines])
    if np.linalg.svd(normals, compute_uv=False)[-1] < MIN_SINE:
        raise GeometryError("the four edges are parallel in the photo: they have no vanishing "
                            "point, so they cannot be a room seen in one-point perspective")
    solution, *_ = np.linalg.lstsq(normals, offsets, rcond=None)
    return float(solution[0]), float(solution[1])


def measure_one_point(room: OnePointRoom, room_height: float, width: int, height: int,
                      focal: float | None = None) -> Measurement:
    edges = {"the top-left line": room.top_left, "the top-right line": room.top_right,
             "the bottom-left line": room.bottom_left, "the bottom-right line": room.bottom_right}
    check_on_photo(edges, width, height)
    lines = [_line(far, near, name) for name, (far, near) in edges.items()]
    vp = _common_point(lines)
    camera = Camera(focal or DEFAULT_FOCAL_RATIO * width, vp[0], vp[1])
    (far_tl, near_tl), (far_tr, near_tr) = room.top_left, room.top_right
    (far_bl, near_bl), (far_br, near_br) = room.bottom_left, room.bottom_right
    back_pixels = ((far_bl.y - far_tl.y) + (far_br.y - far_tr.y)) / 2
    if back_pixels < 1.0 or far_br.x - far_bl.x < 1.0:
        raise GeometryError("the back wall's corners do not make a wall: the far bottom points "
                            "must lie below the far top points, the right ones right of the left ones")
    back_depth = camera.focal * room_height / back_pixels
    far_left, far_right = camera.ray(far_bl) * back_depth, camera.ray(far_br) * back_depth
    floor_y = float((far_left[1] + far_right[1]) / 2)
    if floor_y <= 0:
        raise GeometryError("the back wall's bottom corners must lie below the vanishing point")
    ceiling_y = floor_y - room_height
    near_left = _on_plane_y(camera, near_bl, floor_y, "the near bottom-left point")
    near_right = _on_plane_y(camera, near_br, floor_y, "the near bottom-right point")
    near_top_left = _on_plane_y(camera, near_tl, ceiling_y, "the near top-left point")
    near_top_right = _on_plane_y(camera, near_tr, ceiling_y, "the near top-right point")
    room_width = float(far_right[0] - far_left[0])
    depth = float(back_depth - (near_left[2] + near_right[2]) / 2)
    if depth <= 0:
        raise GeometryError("the near points must be nearer the camera than the back wall")
    # The near end's height: each near top point seen at the depth of the near bottom point
    # below it. Marks that agree give the height given.
    height_check = float(np.mean([floor_y - (top_3d[1] * bottom_3d[2] / top_3d[2])
                                  for top_3d, bottom_3d in ((near_top_left, near_left),
                                                            (near_top_right, near_right))]))
    project = camera.project
    near_mid_left = np.array([far_left[0], floor_y, back_depth - depth])
    dimensions = (
        Dimension("width", room_width, project(far_left), project(far_right)),
        Dimension("depth", depth, project(near_mid_left), project(far_left)),
        Dimension("height", room_height, project(far_left),
                  project(far_left - np.array([0.0, room_height, 0.0]))),
    )
    return Measurement("one_point", width=room_width, depth=depth, height=room_height,
                       height_check=height_check, dimensions=dimensions,
                       focal_length=camera.focal, vanishing_points=(vp,))


# -- true size on a wall or the floor ------------------------------------------------------------------------

Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


def true_size_quad(true_size: TrueSize, width: int, height: int) -> Quad:
    """Where a `true_size.width` x `true_size.height` product goes on the photo: its corners
    (top-left, top-right, bottom-right, bottom-left) on the wall that holds the reference line
    (or on the floor, for `surface` "floor"), its top-left at `true_size.at`."""
    start, end = true_size.reference_line
    check_on_photo({"the reference line": true_size.reference_line,
                    "the product's top-left corner": [true_size.at]},
                   width, height)
    _line(start, end, "the reference line")
    camera = Camera(DEFAULT_FOCAL_RATIO * width, width / 2, height / 2)
    if true_size.surface == "floor":
        return _floor_quad(true_size, camera)
    up_down = np.array([0.0, 1.0, 0.0])
    angle = math.degrees(math.atan2(abs(end.x - start.x), abs(end.y - start.y)))
    if angle < VERTICAL_TOLERANCE:
        # A vertical line: the wall is taken as facing the camera.
        along, across = up_down, np.array([1.0, 0.0, 0.0])
    else:
        # A horizontal line along the wall: its vanishing point lies on the horizon.
        horizon = np.array([0.0, 1.0, -camera.cy])
        vanishing = np.cross(np.cross(_homogeneous(start), _homogeneous(end)), horizon)
        direction = np.array([vanishing[0] - camera.cx * vanishing[2], vanishing[1] - camera.cy * vanishing[2],
                              camera.focal * vanishing[2]])
        along = direction / np.linalg.norm(direction)
        across = up_down
    ray_start, ray_end = camera.ray(start), camera.ray(end)
    # depth_end * ray_end - depth_start * ray_start = length * along, up to one scale.
    system = np.column_stack([ray_end, -ray_start, -along])
    null = np.linalg.svd(system)[2][-1]
    if null[0] + null[1] < 0:
        null = -null
    depth_end, depth_start, length = null[0], null[1], abs(null[2])
    if length <= 1e-9 or depth_start <= 0 or depth_end <= 0:
        raise GeometryError("the reference line cannot lie on a wall seen by this photo's camera "
                            "(a line along a wall, or a vertical one)")
    scale = true_size.line_length / length
    origin_on_line = ray_start * depth_start * scale
    normal = np.cross(along, across)
    at_ray = camera.ray(true_size.at)
    facing = float(normal @ at_ray)
    if abs(facing) < 1e-9:
        raise GeometryError("the placement point sees the wall edge-on")
    corner = at_ray * float(normal @ origin_on_line) / facing
    right = along if along[1] == 0 else across
    if camera.project(corner + right)[0] < camera.project(corner)[0]:
        right = -right
    down = up_down
    size_right, size_down = right * true_size.width, down * true_size.height
    project = camera.project
    return (project(corner), project(corner + size_right), project(corner + size_right + size_down),
            project(corner + size_down))


def _floor_quad(true_size: TrueSize, camera: Camera) -> Quad:
    """A product lying flat on the floor (a rug): the reference line on the floor gives the
    scale and the direction of the product's width; its depth runs across the line, towards
    the camera, from its far-left corner at `true_size.at`."""
    start, end = true_size.reference_line
    # The floor is the plane y = 1 (camera heights as the unit), until the line gives the scale.
    first = _on_plane_y(camera, start, 1.0, "the reference line's first point")
    second = _on_plane_y(camera, end, 1.0, "the reference line's second point")
    length = _horizontal(first, second)
    if length <= 1e-9:
        raise GeometryError("the reference line has no length on the floor")
    scale = true_size.line_length / length
    corner = _on_plane_y(camera, true_size.at, 1.0, "the product's top-left corner") * scale
    along = (second - first) / length
    right = along if camera.project(corner + along)[0] >= camera.project(corner)[0] else -along
    # Across the line, on the floor, the way that comes nearer the camera.
    near = np.array([-along[2], 0.0, along[0]])
    if near[2] > 0:
        near = -near
    size_right, size_near = right * true_size.width, near * true_size.height
    if (corner + size_near)[2] <= 0:
        raise GeometryError("at its true size the product reaches past the camera: place its "
                            "far-left corner further away, or give its real size")
    project = camera.project
    return (project(corner), project(corner + size_right), project(corner + size_right + size_near),
            project(corner + size_near))


def quad_bounds(quad: Quad) -> tuple[int, int, int, int]:
    """The quad's bounding box as (x, y, w, h) in whole pixels."""
    xs, ys = [point[0] for point in quad], [point[1] for point in quad]
    left, top = math.floor(min(xs)), math.floor(min(ys))
    return left, top, max(1, math.ceil(max(xs)) - left), max(1, math.ceil(max(ys)) - top)


def true_size_box(true_size: TrueSize, width: int, height: int) -> Box:
    """The placement (pixels of the photo) of a product at its true size: its quad's bounds,
    which must lie on the photo."""
    left, top, w, h = quad_bounds(true_size_quad(true_size, width, height))
    if left < -EDGE_SLACK or top < -EDGE_SLACK or left + w > width + 1 or top + h > height + 1:
        raise GeometryError(f"at its true size the product takes {w}x{h} pixels from ({left}, {top}): "
                            f"it reaches outside the photo, which is {width}x{height} pixels")
    left, top = max(0, left), max(0, top)
    return Box(x=left, y=top, w=min(w, width - left), h=min(h, height - top))


def measure_room(room: TwoPointRoom | OnePointRoom, room_height: float, width: int,
                 height: int) -> Measurement:
    if isinstance(room, TwoPointRoom):
        return measure_two_point(room, room_height, width, height)
    return measure_one_point(room, room_height, width, height)
