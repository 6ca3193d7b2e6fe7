"""`GET /v1/tasks`: every task's definition (canonical/tasks.py) as clients read it, and what
this server's engine does with it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from roomrender.api.deps import services
from roomrender.api.errors import COMMON_STATUSES, native_responses
from roomrender.canonical.artifacts import ArtifactKind
from roomrender.canonical.models import OutputFormat, Task
from roomrender.canonical.tasks import COMMON_OPTIONS, TASKS, TaskDefinition, field_schemas
from roomrender.engines.base import Engine

router = APIRouter(prefix="/v1", tags=["native"], responses=native_responses(*COMMON_STATUSES))
# What an uploaded or fetched input image may be (images.py checks its content).
INPUT_TYPES = ["image/jpeg", "image/png", "image/webp"]


class InputOut(BaseModel):
    name: str
    required: bool
    schema_: dict[str, Any] = Field(alias="schema")


class RuleOut(BaseModel):
    any_of: list[str] = Field(description="at least one of these fields must be set")
    message: str


class CostOut(BaseModel):
    credits: int = Field(description="credits per unit")
    per: str = Field(description="the unit: job, image, second (of video)")
    counted_by: str | None = Field(description="the request field counting the units; null: one per job")


class TaskOut(BaseModel):
    name: Task
    summary: str
    inputs: list[InputOut] = Field(description="the image references it reads")
    requires: list[RuleOut]
    options: dict[str, dict[str, Any]] = Field(description="each option's JSON schema")
    output_kind: ArtifactKind
    output_formats: list[OutputFormat]
    cost: CostOut
    engines: list[str] = Field(description="the engines that run it")
    runs_here: bool = Field(description="whether this server's engine runs it")
    ignored_options: list[str] = Field(
        description="its inputs and options this server's engine ignores or refuses: not worth offering")


class InputLimitsOut(BaseModel):
    max_bytes: int
    max_pixels: int
    content_types: list[str]


class TaskCatalogOut(BaseModel):
    engine: str
    tasks: list[TaskOut]
    common_options: dict[str, dict[str, Any]] = Field(description="options every task takes")
    input_limits: InputLimitsOut


def task_json(definition: TaskDefinition, engine: Engine) -> dict[str, Any]:
    schemas = field_schemas()
    required = definition.required_inputs()
    runs_here = definition.task in engine.supported_tasks()
    return {
        "name": definition.task.value,
        "summary": definition.summary,
        "inputs": [{"name": name, "required": name in required, "schema": schemas[name]}
                   for name in definition.inputs],
        "requires": [{"any_of": list(rule.fields), "message": rule.message} for rule in definition.requires],
        "options": {name: schemas[name] for name in definition.options},
        "output_kind": definition.output.value,
        "output_formats": list(definition.output_formats),
        "cost": definition.cost.as_dict(),
        "engines": list(definition.engine_names),
        "runs_here": runs_here,
        "ignored_options": sorted(definition.ignored_by(engine.name)) if runs_here else [],
    }


@router.get("/tasks", response_model=TaskCatalogOut,
            summary="Every task: its inputs, options, output kind, cost, and whether this server runs it")
def task_catalog(request: Request) -> dict[str, Any]:
    svc = services(request)
    schemas = field_schemas()
    return {
        "engine": svc.engine.name,
        "tasks": [task_json(definition, svc.engine) for definition in TASKS.values()],
        "common_options": {name: schemas[name] for name in COMMON_OPTIONS},
        "input_limits": {"max_bytes": svc.settings.max_input_bytes,
                         "max_pixels": svc.settings.max_input_pixels, "content_types": INPUT_TYPES},
    }
