"""The camera moves a room tour video is made with: one list for every engine and dialect. Each
move has a title (what a person picks) and the words that describe it to a video model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

CameraMoveName = Literal["dolly_in", "dolly_out", "pan_left", "pan_right", "orbit", "tilt_up",
                         "tilt_down", "flythrough"]
# Video options: their limits and defaults.
MIN_DURATION_SECONDS = 2.0
MAX_DURATION_SECONDS = 10.0
DEFAULT_DURATION_SECONDS = 5.0
DEFAULT_FPS = 24
Resolution = Literal["480p", "720p", "1080p"]
DEFAULT_RESOLUTION: Resolution = "720p"
# A frame's shorter side, in pixels, for each resolution.
RESOLUTION_LINES: dict[str, int] = {"480p": 480, "720p": 720, "1080p": 1080}
# Both sides of a frame are multiples of this (yuv420p needs even sides; 8 keeps 1080p at 1080
# lines). A video model that needs coarser multiples rounds its own working size.
FRAME_MULTIPLE = 8


@dataclass(frozen=True)
class CameraMove:
    name: CameraMoveName
    title: str
    prompt: str


CAMERA_MOVES: dict[str, CameraMove] = {move.name: move for move in (
    CameraMove("dolly_in", "Dolly In", "the camera slowly dollies in towards the room, smooth and steady"),
    CameraMove("dolly_out", "Dolly Out", "the camera slowly dollies out, revealing the whole room"),
    CameraMove("pan_left", "Pan Left", "the camera pans slowly to the left across the room"),
    CameraMove("pan_right", "Pan Right", "the camera pans slowly to the right across the room"),
    CameraMove("orbit", "Orbit", "the camera orbits gently around the centre of the room"),
    CameraMove("tilt_up", "Tilt Up", "the camera tilts slowly up from the floor to the ceiling"),
    CameraMove("tilt_down", "Tilt Down", "the camera tilts slowly down from the ceiling to the floor"),
    CameraMove("flythrough", "Flythrough Cinematic",
               "a cinematic flythrough of the room, the camera gliding forward and turning gently, "
               "soft natural light, real estate video"),
)}
DEFAULT_CAMERA_MOVE: CameraMoveName = "dolly_in"
assert set(CAMERA_MOVES) == set(get_args(CameraMoveName))


def frame_size(resolution: str, width: int, height: int) -> tuple[int, int]:
    """A video frame for a photo of `width` x `height`: the photo's shape, its shorter side the
    resolution's lines, both sides rounded to FRAME_MULTIPLE."""
    lines = RESOLUTION_LINES[resolution]
    scale = lines / min(width, height)

    def rounded(side: float) -> int:
        return max(FRAME_MULTIPLE, round(side / FRAME_MULTIPLE) * FRAME_MULTIPLE)

    return rounded(width * scale), rounded(height * scale)


def frame_count(duration_seconds: float, fps: int) -> int:
    return max(1, round(duration_seconds * fps))
