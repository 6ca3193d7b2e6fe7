"""The canonical request and job every dialect translates to and from."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from roomrender.canonical.artifacts import ArtifactKind
from roomrender.canonical.boxes import Box
from roomrender.canonical.camera import (
    MAX_DURATION_SECONDS,
    MIN_DURATION_SECONDS,
    CameraMoveName,
    Resolution,
)
from roomrender.canonical.perspective import MAX_LENGTH, RoomLines, TrueSize

# Length limits of the free values of a request, whichever dialect it came in.
MAX_URL_LENGTH = 2048
MAX_NAME_LENGTH = 64
MAX_PROMPT_LENGTH = 2000
MAX_PALETTE_LENGTH = 512
MAX_MATERIALS = 16
MAX_EXTRA_IMAGES = 6
Name = Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH)]
Material = Annotated[str, StringConstraints(max_length=100)]


class Task(StrEnum):
    restyle = "restyle"
    empty_room = "empty_room"
    stage = "stage"
    sketch_render = "sketch_render"
    style_transfer = "style_transfer"
    edit = "edit"
    recolor = "recolor"
    upscale = "upscale"
    expand = "expand"
    segment = "segment"
    text_to_image = "text_to_image"
    instruct = "instruct"  # an image and a sentence saying what to change
    cutout = "cutout"
    place = "place"
    measure = "measure"  # a room's dimensions from one photo: dimension lines and JSON
    video = "video"  # a photo → a short clip along a camera move
    object_3d = "object_3d"  # one to four photos of an object -> a textured GLB
    vectorize = "vectorize"  # a picture traced into an SVG drawing
    pattern = "pattern"  # a seamless, tileable texture
    change_background = "change_background"  # a product kept, the scene around it new
    moodboard = "moodboard"  # a board of a photo, its pieces and their palette
    chat = "chat"  # an interior-design assistant's answer, in words (a photo optional)


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.canceled)


OutputFormat = Literal["png", "jpeg", "webp"]
# A picture's shape, width:height (text_to_image): its long side is the model's own size.
AspectRatio = Literal["16:9", "3:2", "4:3", "1:1", "3:4", "2:3", "9:16"]
Area = Literal["wall", "floor", "ceiling"]
WebhookEvent = Literal["job.started", "job.progress", "job.succeeded", "job.failed", "job.canceled"]
TERMINAL_EVENTS: list[str] = ["job.succeeded", "job.failed", "job.canceled"]
# A control map an engine can also return: the straight-line map of the input (what the lines
# ControlNet is conditioned on).
ControlMap = Literal["lines"]
CLIENT_DATA_MAX_BYTES = 16 * 1024


class Expand(BaseModel):
    """How far to extend the canvas on each side, as a fraction of the image's width/height."""

    model_config = ConfigDict(extra="forbid")
    left: float = Field(0.25, ge=0, le=2)
    right: float = Field(0.25, ge=0, le=2)
    top: float = Field(0.0, ge=0, le=2)
    bottom: float = Field(0.0, ge=0, le=2)


# chat: the most turns a conversation carries forward (the oldest are dropped past it).
MAX_CHAT_TURNS = 20
MAX_CHAT_ANSWER_LENGTH = 20_000


class ChatTurn(BaseModel):
    """One exchange of a conversation: what was asked and what the assistant answered."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(max_length=MAX_PROMPT_LENGTH)
    answer: str = Field(max_length=MAX_CHAT_ANSWER_LENGTH)


class Dimensions(BaseModel):
    """An object's real size in metres (any of its sides; the model is scaled to match)."""

    model_config = ConfigDict(extra="forbid")
    width: float | None = Field(None, gt=0, le=100)
    height: float | None = Field(None, gt=0, le=100)
    depth: float | None = Field(None, gt=0, le=100)


# The fewest and most faces a 3D model may be simplified to (object_3d's `simplify`).
MIN_FACES = 12
MAX_FACES = 500_000


# The version of GenerationRequest and of the task list. Bumped whenever either changes in a way
# a worker of the previous version cannot run (a new field that matters, a new task): every job
# records the version of the API that wrote it, and a worker claims only jobs of its version or
# older, so a newer job waits for a newer worker instead of failing on an older one.
REQUEST_VERSION = 1


class GenerationRequest(BaseModel):
    """What a client wants, in canonical terms.

    Image fields are references: an http(s) URL, a `data:` URI or an upload id. JobService
    resolves them to stored input files (upload ids) before the job is queued.
    """

    model_config = ConfigDict(extra="forbid")

    task: Task
    image: str | None = None
    mask: str | None = None
    reference_image: str | None = None
    extra_images: list[str] = Field(default_factory=list, max_length=MAX_EXTRA_IMAGES)

    style: Name | None = None
    room_type: Name | None = None
    exterior: bool = False
    prompt: str | None = Field(None, max_length=MAX_PROMPT_LENGTH)
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_LENGTH)
    palette: str | None = Field(None, max_length=MAX_PALETTE_LENGTH)
    materials: list[Material] = Field(default_factory=list, max_length=MAX_MATERIALS)
    color: str | None = Field(None, pattern=r"^#[0-9A-Fa-f]{6}$")
    # What may change: a named surface (recolor), or a box in pixels of the photo (place).
    area: Area | Box | None = None
    exact_color: bool = False
    remove: bool = False
    keep_structure: bool = False
    fill_room: bool = False
    # Also return this control map of the input, as the first output, labelled with its name.
    control_map: ControlMap | None = None

    n: int = Field(1, ge=1, le=8)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    strength: float | None = Field(None, ge=0.0, le=1.0)
    scale: int | None = None
    expand: Expand | None = None
    width: int | None = Field(None, ge=64, le=2048)
    aspect_ratio: AspectRatio | None = None
    height: int | None = Field(None, ge=64, le=2048)
    steps: int | None = Field(None, ge=1, le=150)
    guidance: float | None = Field(None, ge=0.0, le=30.0)
    speed: Literal["quality", "fast"] = "quality"
    # A model family of the engine (the diffusers engine's `sd15`, `sdxl`); None: the server's.
    model: str | None = Field(None, max_length=64, pattern=r"^[a-z0-9_.-]+$")
    output_format: OutputFormat = "png"

    webhook: str | None = Field(None, max_length=MAX_URL_LENGTH)
    webhook_events: list[WebhookEvent] = Field(default_factory=lambda: list(TERMINAL_EVENTS),  # type: ignore[arg-type]
                                               max_length=10)
    priority: int = Field(0, ge=-10, le=10)
    # The submitting dialect's record of the request as its client sent it (a Replicate
    # prediction's model, version and input), kept with the job and given back; the core never
    # reads it.
    client_data: dict[str, Any] | None = None

    @field_validator("client_data")
    @classmethod
    def _client_data_is_small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > CLIENT_DATA_MAX_BYTES:
            raise ValueError(f"client_data must be at most {CLIENT_DATA_MAX_BYTES} bytes of JSON")
        return value

    # place: the product photo and where it goes (origin top-left, pixels of the room photo).
    product_image: str | None = None
    placement: Box | None = None
    # place at true size: a reference line of known length gives the scale (sets placement).
    true_size: TrueSize | None = None

    # measure: the room's corners as marked on the photo, and its height (the scale).
    room: RoomLines | None = None
    room_height: float | None = Field(None, gt=0, le=MAX_LENGTH, allow_inf_nan=False)

    # video: the camera move, the clip's length in seconds, its frame rate and resolution.
    camera: CameraMoveName | None = None
    duration: float | None = Field(None, ge=MIN_DURATION_SECONDS, le=MAX_DURATION_SECONDS)
    fps: int | None = Field(None, ge=8, le=30)
    resolution: Resolution | None = None

    # object_3d: the model's base-colour texture (False: vertex colours only), its face budget,
    # a glossy (reflective) finish and the object's real size.
    texture: bool = True
    simplify: int | None = Field(None, ge=MIN_FACES, le=MAX_FACES)
    glossy: bool = False
    dimensions: Dimensions | None = None

    # chat: the job this one follows up (a conversation the key owns), the turns before it (the
    # server fills them from that job, never the client) and the answer's language.
    conversation: str | None = Field(None, max_length=64)
    history: list[ChatTurn] = Field(default_factory=list, max_length=MAX_CHAT_TURNS)
    lang: str | None = Field(None, max_length=35, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
    # Any generator: the prompt rewritten into a richer one before rendering (engines/enhancing.py).
    enhance_prompt: bool = False

    @field_validator("scale")
    @classmethod
    def _scale_is_known(cls, value: int | None) -> int | None:
        if value is not None and value not in (2, 4, 8):
            raise ValueError("scale must be 2, 4 or 8")
        return value

    @model_validator(mode="after")
    def _text_is_storable(self) -> GenerationRequest:
        """Every string is plain text (no lone surrogate, which no database stores), and an
        image reference other than a data: URI is no longer than a URL may be."""
        for name, value in self:
            for item in value if isinstance(value, list) else [value]:
                if not isinstance(item, str):
                    continue
                if _LONE_SURROGATE.search(item):
                    raise ValueError(f"{name} holds a lone surrogate (\\ud800-\\udfff): not text")
                if (name in _IMAGE_FIELDS and len(item) > MAX_URL_LENGTH
                        and not item.startswith("data:")):
                    raise ValueError(f"{name}: a URL or upload id is at most {MAX_URL_LENGTH} "
                                     "characters")
        return self

    def image_refs(self) -> dict[str, str]:
        """The image references this request carries, by field name."""
        refs = {
            name: getattr(self, name)
            for name in ("image", "mask", "reference_image", "product_image")
            if getattr(self, name)
        }
        for index, ref in enumerate(self.extra_images):
            refs[f"extra_images.{index}"] = ref
        return refs

    @property
    def surface(self) -> Area | None:
        """`area` when it names a surface (wall, floor, ceiling)."""
        return self.area if isinstance(self.area, str) else None

    @property
    def area_box(self) -> Box | None:
        """`area` when it is a box in pixels."""
        return self.area if isinstance(self.area, Box) else None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_IMAGE_FIELDS = ("image", "mask", "reference_image", "extra_images")


@dataclass(frozen=True)
class Output:
    """One stored artifact of a job, as every dialect presents it."""

    url: str
    key: str
    content_type: str
    kind: ArtifactKind = ArtifactKind.image
    # Pixels, for images, videos and vector drawings; None for meshes, data and text.
    width: int | None = None
    height: int | None = None
    label: str | None = None
    size_bytes: int | None = None
    # Videos: their length, frame rate and the URL of their poster frame (a still image).
    duration_seconds: float | None = None
    fps: float | None = None
    poster_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "url": self.url,
                                "content_type": self.content_type}
        for name in ("width", "height", "size_bytes", "duration_seconds", "fps", "poster_url", "label"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data


@dataclass
class Job:
    id: str
    owner_id: str
    dialect: str
    task: Task
    status: JobStatus
    request: GenerationRequest
    cost: int
    priority: int
    progress: float
    attempts: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    outputs: list[Output] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None
    queue_position: int | None = None
    eta_seconds: float | None = None
    cancel_requested: bool = False
    # The latest live preview's URL while the job runs (a small JPEG, short-lived).
    preview_url: str | None = None

    # Set while a queued job waits for something other than its turn (no worker is running).
    waiting_for: str | None = None

    @property
    def percent(self) -> int:
        """0..100; 100 only for a succeeded job (a job canceled or failed after its last step,
        or still storing its outputs, is not done)."""
        if self.status == JobStatus.succeeded:
            return 100
        return min(99, int(round(self.progress * 100)))
