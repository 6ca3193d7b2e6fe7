"""Each task, defined once: what it needs, the options it reads, what it returns, what it costs
and the engines that run it. Validation (`missing_input`), the job's cost, the native catalog
(`GET /v1/tasks`), the playground and `roomrender submit` all read these definitions."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from roomrender.canonical.artifacts import ArtifactKind
from roomrender.canonical.camera import DEFAULT_DURATION_SECONDS, DEFAULT_RESOLUTION, frame_size
from roomrender.canonical.models import GenerationRequest, OutputFormat, Task

# The request's image references (an upload id, a URL or a data: URI each).
IMAGE_INPUTS = ("image", "mask", "reference_image", "product_image", "extra_images")
# Options every task takes, whatever it is: how the job is delivered, not what it makes.
COMMON_OPTIONS = ("output_format", "webhook", "webhook_events", "priority")
ALL_OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("png", "jpeg", "webp")


@dataclass(frozen=True)
class InputRule:
    """At least one of `fields` must be set; `message` tells the client what to send."""

    fields: tuple[str, ...]
    message: str

    def met_by(self, request: GenerationRequest) -> bool:
        return any(getattr(request, name) for name in self.fields)


@dataclass(frozen=True)
class Cost:
    """Credits a job costs: `credits` per `per` (a job, an image, a second of video), counted
    by the request field `counted_by` (None: one per job)."""

    credits: int
    per: str = "job"
    counted_by: str | None = None
    # What `counted_by` counts when a request leaves it out (a video's default length).
    default_units: float = 1

    def __post_init__(self) -> None:
        if self.counted_by is not None and self.counted_by not in GenerationRequest.model_fields:
            raise ValueError(f"Cost.counted_by: no request field {self.counted_by!r}")

    def of(self, request: GenerationRequest) -> int:
        units = None if self.counted_by is None else getattr(request, self.counted_by)
        return self.credits * math.ceil(self.default_units if units is None else units)

    def as_dict(self) -> dict[str, Any]:
        return {"credits": self.credits, "per": self.per, "counted_by": self.counted_by}


@dataclass(frozen=True)
class LengthCost(Cost):
    """Credits by the length of what a language model reads: `credits` per `words` words started
    (at least one), of the prompt and the conversation's earlier turns (the model reads them all
    again on every turn). Luw's archigpt: 1 credit per ~3,000 words."""

    words: int = 3000

    def of(self, request: GenerationRequest) -> int:
        return self.credits * max(1, math.ceil(words_read(request) / self.words))

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "words": self.words}


def words_read(request: GenerationRequest) -> int:
    """The words a chat's model reads: its prompt and every earlier turn, asked and answered."""
    texts = [request.prompt or "", *(f"{turn.prompt} {turn.answer}" for turn in request.history)]
    return sum(len(text.split()) for text in texts)


PER_IMAGE = Cost(1, per="image", counted_by="n")
ONE_PER_JOB = Cost(1)


@dataclass(frozen=True)
class EngineUse:
    """An engine that runs the task, and the request fields it does not honour there: it ignores
    or refuses them, or makes nothing of them (`n` copies of one deterministic result). Clients
    should not offer them on that engine; those the task does not take are left out."""

    engine: str
    ignores: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TaskDefinition:
    task: Task
    summary: str
    # The image references it reads (of IMAGE_INPUTS) and its other request fields.
    inputs: tuple[str, ...]
    options: tuple[str, ...]
    # What a request must carry, whatever engine runs it.
    requires: tuple[InputRule, ...]
    output: ArtifactKind
    cost: Cost
    engines: tuple[EngineUse, ...]
    output_formats: tuple[OutputFormat, ...] = ALL_OUTPUT_FORMATS
    # The task's own check of values it reads (beyond their presence): why not, or None.
    check: Callable[[GenerationRequest], str | None] | None = field(default=None, compare=False)
    # The output's size in pixels from the input image's (None: the input's own).
    resize: Callable[[GenerationRequest, int, int], tuple[int, int]] | None = field(
        default=None, compare=False)

    def __post_init__(self) -> None:
        known = GenerationRequest.model_fields
        for name in (*self.inputs, *self.options, *(f for rule in self.requires for f in rule.fields)):
            if name not in known:
                raise ValueError(f"task {self.task.value}: no request field {name!r}")
        for use in self.engines:
            unknown = use.ignores - set(known)
            if unknown:
                raise ValueError(f"task {self.task.value}, engine {use.engine}: no request fields "
                                 f"{sorted(unknown)}")

    @property
    def engine_names(self) -> tuple[str, ...]:
        return tuple(use.engine for use in self.engines)

    def ignored_by(self, engine: str) -> frozenset[str]:
        """What `engine` does not honour of this task's inputs and options (nothing, for an
        engine this definition does not know)."""
        ignores = next((use.ignores for use in self.engines if use.engine == engine), frozenset())
        return ignores & {*self.inputs, *self.options}

    def output_size(self, request: GenerationRequest, width: int, height: int) -> tuple[int, int]:
        return self.resize(request, width, height) if self.resize is not None else (width, height)

    def required_inputs(self) -> tuple[str, ...]:
        """The fields a request cannot go without (a rule naming that field alone)."""
        return tuple(rule.fields[0] for rule in self.requires if len(rule.fields) == 1)


_NEEDS_IMAGE = InputRule(("image",), "this task needs an input image")
# What a diffusion pipeline reads, on any task it runs.
# enhance_prompt: the prompt rewritten richer first (engines/enhancing.py), on any generator.
_SAMPLING = ("n", "seed", "negative_prompt", "steps", "guidance", "speed", "model", "enhance_prompt")
# How a picture should look: words, a style, a room.
_LOOK = ("style", "room_type", "exterior", "prompt", "palette", "materials")
_SIZE = ("width", "height")
# The preview engine has no model: none of this reaches it; model and control_map it refuses.
_NO_MODEL = frozenset({"enhance_prompt", "negative_prompt", "steps", "guidance", "speed", "model", "control_map",
                       "width", "height"})


# Its image processing gives one result for one input: no seed, and n copies of the same image.
_FIXED = ("seed", "n")


def _preview(*ignores: str) -> EngineUse:
    return EngineUse("preview", _NO_MODEL.union(ignores))


_DIFFUSERS = EngineUse("diffusers")
DEFAULT_TILE = 768
BOARD_SIZE = (1200, 900)


def _area_is_a_box(request: GenerationRequest) -> str | None:
    if request.surface is not None:
        return "for place, area is a box {x, y, w, h} in pixels: the part of the photo that may change"
    return None


def _area_is_a_surface(request: GenerationRequest) -> str | None:
    if request.area_box is not None:
        return "for recolor, area is wall, floor or ceiling"
    return None


# object_3d: the object's photo and up to this many more of it from other angles.
MAX_OBJECT_PHOTOS = 4


def _few_object_photos(request: GenerationRequest) -> str | None:
    if len(request.extra_images) > MAX_OBJECT_PHOTOS - 1:
        return (f"object_3d takes at most {MAX_OBJECT_PHOTOS} photos: the image and "
                f"{MAX_OBJECT_PHOTOS - 1} extra_images")
    return None


def _scaled(request: GenerationRequest, width: int, height: int) -> tuple[int, int]:
    factor = request.scale or 1
    return width * factor, height * factor


def _expanded(request: GenerationRequest, width: int, height: int) -> tuple[int, int]:
    if request.expand is None:
        return width, height
    sides = request.expand
    return round(width * (1 + sides.left + sides.right)), round(height * (1 + sides.top + sides.bottom))


def _video_frame(request: GenerationRequest, width: int, height: int) -> tuple[int, int]:
    return frame_size(request.resolution or DEFAULT_RESOLUTION, width, height)


# A clip costs by its length: a credit a second (a second started counts whole).
PER_SECOND = Cost(1, per="second", counted_by="duration", default_units=DEFAULT_DURATION_SECONDS)
_CLIP = ("camera", "duration", "fps", "resolution")
def _tile_sized(request: GenerationRequest, width: int, height: int) -> tuple[int, int]:
    """A pattern is a square tile unless asked otherwise, 768 px a side by default."""
    side = request.width or request.height or DEFAULT_TILE
    return side, request.height or side


def _board_sized(request: GenerationRequest, width: int, height: int) -> tuple[int, int]:
    return BOARD_SIZE


def _definitions() -> list[TaskDefinition]:
    return [
        TaskDefinition(
            Task.restyle, "The same room, its walls, windows and doors kept, in another style",
            inputs=("image",),
            options=(*_LOOK, "strength", "keep_structure", "control_map", *_SIZE, *_SAMPLING),
            requires=(_NEEDS_IMAGE,), output=ArtifactKind.image, cost=PER_IMAGE,
            engines=(_preview("room_type", "exterior", "prompt", "palette", "materials",
                              "keep_structure"), _DIFFUSERS)),
        TaskDefinition(
            Task.empty_room, "The room with its furniture and decor taken out",
            inputs=("image",),
            options=("room_type", "prompt", "strength", "control_map", *_SIZE, *_SAMPLING),
            requires=(_NEEDS_IMAGE,), output=ArtifactKind.image, cost=PER_IMAGE,
            engines=(_DIFFUSERS,)),
        TaskDefinition(
            Task.stage, "An empty room furnished in a style",
            inputs=("image",),
            options=(*_LOOK, "fill_room", "strength", "keep_structure", "control_map", *_SIZE,
                     *_SAMPLING),
            requires=(_NEEDS_IMAGE,), output=ArtifactKind.image, cost=PER_IMAGE,
            engines=(_DIFFUSERS,)),
        TaskDefinition(
            Task.sketch_render, "A photo-real room from a sketch or line drawing",
            inputs=("image",),
            options=(*_LOOK, "strength", "control_map", *_SIZE, *_SAMPLING),
            requires=(_NEEDS_IMAGE,), output=ArtifactKind.image, cost=PER_IMAGE,
            engines=(_DIFFUSERS,)),
        TaskDefinition(
            Task.style_transfer, "The room restyled after the look of a reference photo",
            inputs=("image", "reference_image"),
            options=("prompt", "strength", "control_map", *_SIZE, *_SAMPLING),
            requires=(_NEEDS_IMAGE,
                      InputRule(("reference_image",), "style_transfer needs a reference_image")),
            output=ArtifactKind.image, cost=PER_IMAGE, engines=(_DIFFUSERS,)),
        TaskDefinition(
            Task.edit, "A painted area replaced by what a prompt, materials or a photo say, or erased",
            inputs=("image", "mask", "reference_image"),
            options=("prompt", "materials", "remove", "strength", *_SAMPLING),
            requires=(_NEEDS_IMAGE,
                      InputRule(("mask",), "an edit needs a mask image (white marks the area to change)"),
                      InputRule(("prompt", "materials", "reference_image", "remove"),
                                "an edit needs a prompt, materials or a reference image for the masked "
                                "area, or remove=true")),
            output=ArtifactKind.image, cost=PER_IMAGE,
            # The preview engine can only erase: it refuses an edit by prompt, materials or photo.
            engines=(_preview("reference_image", "prompt", "materials", "strength", *_FIXED), _DIFFUSERS)),
        TaskDefinition(
            Task.recolor, "Walls, floor, ceiling or a painted area in a given colour",
            inputs=("image", "mask"),
            options=("color", "area", "exact_color", "prompt", "strength", *_SAMPLING),
            requires=(_NEEDS_IMAGE, InputRule(("color",), "a recolor needs a color such as #A3B18A")),
            output=ArtifactKind.image, cost=PER_IMAGE, check=_area_is_a_surface,
            engines=(_preview("exact_color", "prompt", "strength", *_FIXED), _DIFFUSERS)),
        TaskDefinition(
            Task.upscale, "The picture enlarged two, four or eight times",
            inputs=("image",),
            options=("scale", "prompt", *_SAMPLING),
            requires=(_NEEDS_IMAGE, InputRule(("scale",), "an upscale needs a scale of 2, 4 or 8")),
            output=ArtifactKind.image, cost=PER_IMAGE, resize=_scaled,
            engines=(_preview("prompt", *_FIXED), _DIFFUSERS)),
        TaskDefinition(
            Task.expand, "The picture extended past its edges",
            inputs=("image",),
            options=("expand", "prompt", *_SIZE, *_SAMPLING),
            requires=(_NEEDS_IMAGE,), output=ArtifactKind.image, cost=PER_IMAGE, resize=_expanded,
            engines=(_preview("prompt", *_FIXED), _DIFFUSERS)),
        TaskDefinition(
            Task.segment, "Labelled masks of the room's walls, floor, ceiling and furniture",
            inputs=("image",), options=("model",),
            requires=(_NEEDS_IMAGE,), output=ArtifactKind.image, cost=PER_IMAGE,
            engines=(_DIFFUSERS,)),
        TaskDefinition(
            Task.text_to_image, "A room from words, optionally after a guide image (image-to-image)",
            inputs=("image",), options=(*_LOOK, *_SIZE, "aspect_ratio", "strength", *_SAMPLING),
            requires=(InputRule(("prompt",), "text_to_image needs a prompt"),),
            output=ArtifactKind.image, cost=PER_IMAGE, engines=(_DIFFUSERS,)),
        TaskDefinition(
            Task.instruct, "The photo changed as a sentence says (\"make the walls sage green\")",
            inputs=("image", "extra_images"),
            options=("prompt", "strength", *_SIZE, *_SAMPLING),
            requires=(_NEEDS_IMAGE,
                      InputRule(("prompt",), "instruct needs a prompt saying what to change")),
            output=ArtifactKind.image, cost=PER_IMAGE, engines=(_DIFFUSERS,)),
        TaskDefinition(
            Task.cutout, "The subject on a transparent background",
            inputs=("image",), options=("model",),
            requires=(_NEEDS_IMAGE,), output=ArtifactKind.image, cost=PER_IMAGE,
            output_formats=("png", "webp"),
            engines=(_preview(), _DIFFUSERS)),
        TaskDefinition(
            Task.place, "A product, from its own photo, put into the room and blended in",
            inputs=("image", "product_image"),
            options=("placement", "true_size", "area", "prompt", "strength", *_SAMPLING),
            requires=(_NEEDS_IMAGE,
                      InputRule(("product_image",), "place needs a product_image: the product's photo"),
                      InputRule(("placement", "true_size"),
                                "place needs a placement {x, y, w, h}: where the product goes, in "
                                "pixels of the room photo (or true_size: a reference line of known "
                                "length, the product's real size and its top-left corner)")),
            output=ArtifactKind.image, cost=PER_IMAGE, check=_area_is_a_box,
            engines=(_preview("prompt", "strength", *_FIXED), _DIFFUSERS)),
        TaskDefinition(
            Task.measure, "The room's width, depth and height from one photo: dimension lines "
                          "drawn on it, and the numbers as JSON",
            inputs=("image",), options=("room", "room_height"),
            requires=(_NEEDS_IMAGE,
                      InputRule(("room",), "measure needs room: the corners marked on the photo "
                                           "(two_point: top and floor; one_point: four edges)"),
                      InputRule(("room_height",), "measure needs room_height: the room's height, "
                                                  "the scale of every length it finds")),
            output=ArtifactKind.image, cost=Cost(1), engines=(_preview(), _DIFFUSERS)),
        TaskDefinition(
            Task.video, "A short clip of the room from its photo, along a camera move (a room tour)",
            inputs=("image",),
            options=(*_CLIP, "prompt", "seed", "negative_prompt", "steps", "guidance", "model"),
            requires=(_NEEDS_IMAGE,), output=ArtifactKind.video, cost=PER_SECOND,
            resize=_video_frame,
            # The preview engine moves a camera over the still: no words, no randomness. The
            # diffusers engine films it with Wan 2.2 TI2V-5B (engines/diffusers/video.py).
            engines=(_preview("prompt", "seed"), _DIFFUSERS)),
        TaskDefinition(
            Task.object_3d, "A textured 3D model (GLB, metres, Y up, on the floor) of an object, "
                            "from one to four photos",
            inputs=("image", "extra_images"),
            options=("texture", "simplify", "glossy", "dimensions", "seed", "model"),
            requires=(_NEEDS_IMAGE,), output=ArtifactKind.mesh, cost=Cost(3),
            check=_few_object_photos,
            # The preview engine makes a card of the first photo; Shap-E (diffusers) sees one view too.
            engines=(_preview("extra_images", "seed"), EngineUse("diffusers", frozenset({"extra_images"})))),
        TaskDefinition(
            Task.vectorize, "The picture traced into an SVG drawing of filled colour regions; with a "
            "prompt, a picture painted first (the image its guide), then traced",
            inputs=("image",), options=("prompt", "aspect_ratio", "style", "seed", "model"),
            requires=(InputRule(("image", "prompt"), "vectorize needs an image to trace (or a prompt "
                                                      "to paint one first)"),),
            output=ArtifactKind.vector, cost=ONE_PER_JOB,
            engines=(_preview("prompt", "aspect_ratio", "style", "seed"), _DIFFUSERS)),
        TaskDefinition(
            Task.pattern, "A seamless, tileable texture, from words or from a picture",
            inputs=("image",), options=("prompt", "style", "palette", "materials", "strength",
                                        *_SIZE, *_SAMPLING),
            requires=(InputRule(("prompt", "image"), "a pattern needs a prompt or an image"),),
            output=ArtifactKind.image, cost=PER_IMAGE, resize=_tile_sized,
            # From a picture only, by offset and blend: words need a model. The diffusers engine
            # draws one from words (FLUX.1-schnell, tileable): 4 steps, no guidance.
            engines=(EngineUse("preview", (_NO_MODEL - frozenset(_SIZE)).union(
                {"prompt", "style", "palette", "materials", "strength", *_FIXED})), _DIFFUSERS)),
        TaskDefinition(
            Task.change_background, "The product of a photo kept, pixel for pixel, in a new scene",
            inputs=("image", "reference_image"),
            options=("prompt", "color", "palette", "strength", *_SAMPLING),
            requires=(_NEEDS_IMAGE,), output=ArtifactKind.image, cost=PER_IMAGE,
            # A plain colour, a gradient (palette) or the given picture: a scene from words needs
            # a model: the diffusers engine paints one from the prompt (its colour and picture unused).
            engines=(_preview("prompt", "strength", *_FIXED),
                     EngineUse("diffusers", frozenset({"color", "reference_image"})))),
        TaskDefinition(
            Task.moodboard, "A mood board of the photo and its pieces with their palette",
            inputs=("image", "extra_images"),
            options=("prompt", "style", "strength", *_SAMPLING),
            requires=(_NEEDS_IMAGE,), output=ArtifactKind.image, cost=PER_IMAGE,
            resize=_board_sized, engines=(_preview("prompt", "style", "strength", *_FIXED), _DIFFUSERS)),
        TaskDefinition(
            Task.chat, "An interior-design assistant's answer in words, to a question and an "
                       "optional photo; a follow-up names the job it continues (conversation)",
            inputs=("image",), options=("prompt", "conversation", "lang", "seed", "model"),
            requires=(InputRule(("prompt",), "chat needs a prompt: the question to answer"),),
            output=ArtifactKind.text, cost=LengthCost(1, per="3000 words", counted_by="prompt"),
            # The preview engine has no language model: it answers "needs a language model".
            engines=(_DIFFUSERS,)),
    ]


TASKS: dict[Task, TaskDefinition] = {definition.task: definition for definition in _definitions()}
# What a request must carry for each task, whatever engine runs it.
TASK_INPUTS: dict[Task, tuple[InputRule, ...]] = {task: d.requires for task, d in TASKS.items()}


def missing_input(request: GenerationRequest) -> str | None:
    """Why `request` cannot run as its task asks, or None when it carries what the task needs.
    Engines only refuse what they themselves cannot do (Engine.validate)."""
    definition = TASKS[request.task]
    for rule in definition.requires:
        if not rule.met_by(request):
            if rule is _NEEDS_IMAGE:
                return f"the task {request.task.value!r} needs an input image"
            return rule.message
    if request.control_map is not None and not request.image:
        return f"control_map {request.control_map!r} is a map of the input image: it needs an image"
    if request.output_format not in definition.output_formats:
        return (f"a {request.task.value} is transparent: its output_format must be "
                f"{' or '.join(definition.output_formats)}, not {request.output_format}")
    return definition.check(request) if definition.check is not None else None


def cost_of(request: GenerationRequest) -> int:
    """The credits `request`'s job costs."""
    return TASKS[request.task].cost.of(request)


@cache
def field_schemas() -> dict[str, dict[str, Any]]:
    """Each request field's JSON schema, taken from GenerationRequest, references inlined."""
    schema = GenerationRequest.model_json_schema()
    definitions = schema.get("$defs", {})
    properties: dict[str, dict[str, Any]] = schema["properties"]
    return {name: _inlined(value, definitions) for name, value in properties.items()}


def _inlined(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            target = definitions[reference.removeprefix("#/$defs/")]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return _inlined({**target, **rest}, definitions)
        return {key: _inlined(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inlined(item, definitions) for item in node]
    return node
