"""The flags of `roomrender submit`, generated from the task definitions (canonical/tasks.py) and
the request's JSON schema: every option of every task, with its type and range, and the tasks
that take it. A new task or option gets its flag with no change here."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from roomrender.canonical.models import Task
from roomrender.canonical.tasks import COMMON_OPTIONS, IMAGE_INPUTS, TASKS, field_schemas

# Names the command line had before its flags were generated, kept working.
ALIASES: dict[str, tuple[str, ...]] = {"room_type": ("--room",), "product_image": ("--product",)}
# Fields whose own name would clash with an alias above (measure's marked corners, `room`).
RENAMED: dict[str, str] = {"room": "--room-corners"}
# The photo is the command's argument; the dialect's own record is no user's option.
NOT_FLAGS = ("image", "client_data")
PANEL = "Task options (GET /v1/tasks says which a task takes)"


@dataclass(frozen=True)
class Flag:
    """One request field as command-line parameters (one, or one per property of an object)."""

    field: str
    parameters: tuple[inspect.Parameter, ...]
    # An object given as `a,b,c` (its properties, in order), or one of `choices`.
    numbers: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    # A nested value (points, lines, a union of shapes) given as JSON.
    as_json: bool = False

    @property
    def flag(self) -> str:
        return _flag_name(self.field)

    def value(self, given: dict[str, Any]) -> Any:
        """The field's JSON value from the command's parameters; None when none was given."""
        if len(self.parameters) > 1:  # an object's properties, one flag each
            parts = {p.name.split("__", 1)[1]: given.get(p.name) for p in self.parameters}
            return {name: value for name, value in parts.items() if value is not None} or None
        value = given.get(self.parameters[0].name)
        if value is None or value is False or value == []:
            return None
        if isinstance(value, list):
            return [item.value if isinstance(item, Enum) else item for item in value]
        if isinstance(value, Enum):
            return value.value
        if self.as_json:
            try:
                return json.loads(value)
            except ValueError:
                raise typer.BadParameter(f"{value[:80]!r} is not JSON", param_hint=self.flag) from None
        if self.numbers and value not in self.choices:
            return self._numbers(value)
        return value

    def _numbers(self, value: str) -> dict[str, int]:
        try:
            numbers = [int(part.strip()) for part in value.split(",")]
        except ValueError:
            numbers = []
        if len(numbers) != len(self.numbers):
            either = f"{' or '.join(self.choices)}, or " if self.choices else ""
            example = ",".join(str(120 + 40 * i) for i in range(len(self.numbers)))
            raise typer.BadParameter(f"{value!r} is not {either}{','.join(self.numbers)} in whole "
                                     f"pixels, e.g. {example}", param_hint=self.flag)
        return dict(zip(self.numbers, numbers, strict=True))


def _param_name(field: str, part: str | None = None) -> str:
    return f"task_{field}" if part is None else f"task_{field}__{part}"


def _flag_name(field: str, part: str | None = None) -> str:
    if part is None and field in RENAMED:
        return RENAMED[field]
    return "--" + field.replace("_", "-") + ("" if part is None else "-" + part.replace("_", "-"))


def takers(field: str) -> str:
    """The tasks that take `field`, in words."""
    if field in COMMON_OPTIONS:
        return "every task"
    return ", ".join(task.value for task, d in TASKS.items() if field in (*d.inputs, *d.options))


def _option(name: str, annotation: Any, decls: list[str], help: str, default: Any = None,
            **extra: Any) -> inspect.Parameter:
    info = typer.Option(*decls, help=help, rich_help_panel=PANEL, show_default=False, **extra)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, info])


def _choices(field: str, values: list[Any]) -> type[Enum]:
    return StrEnum("".join(part.title() for part in field.split("_")),  # type: ignore[return-value]
                   {str(v): str(v) for v in values})


def _scalar(field: str, schema: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The Python type typer parses a scalar schema as, and the Option's range."""
    if "enum" in schema or "const" in schema:
        return _choices(field, schema.get("enum", [schema.get("const")])), {}
    limits = {"min": schema.get("minimum"), "max": schema.get("maximum")}
    if schema.get("type") == "integer":
        return int, limits
    if schema.get("type") == "number":
        return float, limits
    return str, {}


def _is_nested(branch: dict[str, Any]) -> bool:
    """A union of shapes, or an object holding lists or objects: more than `a,b,c` can say."""
    if "oneOf" in branch:
        return True
    return branch.get("type") == "object" and any(
        prop.get("type") in ("array", "object") or "oneOf" in prop
        for prop in branch.get("properties", {}).values())


def _flag(field: str, schema: dict[str, Any]) -> Flag:
    where = takers(field)
    branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
    objects = [b for b in branches if b.get("type") == "object"]
    decls = [_flag_name(field), *ALIASES.get(field, ())]
    name = _param_name(field)
    if field in IMAGE_INPUTS:
        many = schema.get("type") == "array"
        return Flag(field, (_option(name, list[str] | None if many else str | None, decls, metavar="PATH|URL",
                                    help=f"a file, an http(s) URL or an upload id"
                                         f"{', repeated for more' if many else ''} ({where})"),))
    if any(_is_nested(branch) for branch in branches):
        return Flag(field, (_option(name, str | None, decls, f"as JSON ({where})", metavar="JSON"),),
                    as_json=True)
    if objects and all("default" in p for p in objects[0]["properties"].values()):
        # An object whose every property has a default: a flag per property.
        return Flag(field, tuple(
            _option(_param_name(field, part), _scalar(part, prop)[0] | None, [_flag_name(field, part)],
                    f"{field}: {prop.get('title', part).lower()}, default {prop['default']} ({where})",
                    **_scalar(part, prop)[1])
            for part, prop in objects[0]["properties"].items()))
    if objects:
        numbers = tuple(objects[0]["properties"])
        choices = tuple(str(v) for b in branches for v in b.get("enum", []))
        metavar = "|".join([*choices, ",".join(numbers)])
        return Flag(field, (_option(name, str | None, decls, f"({where})", metavar=metavar),),
                    numbers=numbers, choices=choices)
    branch = branches[0]
    if branch.get("type") == "boolean":
        # A flag: given, it is true; it takes no value (metavar "" keeps `<bool>` out of help).
        return Flag(field, (_option(name, bool, decls, f"({where})", default=False, metavar=""),))
    if branch.get("type") == "array":
        item, _ = _scalar(field, branch.get("items", {}))
        return Flag(field, (_option(name, list[item] | None, decls,  # type: ignore[valid-type]
                                    f"repeat it for more ({where})"),))
    kind, limits = _scalar(field, branch)
    return Flag(field, (_option(name, kind | None, decls, f"({where})", **limits),))


def task_flags() -> list[Flag]:
    """A flag for each field of the request some task reads, in the request's order."""
    taken = {name for d in TASKS.values() for name in (*d.inputs, *d.options)} | set(COMMON_OPTIONS)
    return [_flag(name, schema) for name, schema in field_schemas().items()
            if name in taken and name not in NOT_FLAGS]


def request_fields(task: Task, flags: list[Flag], given: dict[str, Any]) -> dict[str, Any]:
    """The request fields given on the command line; a flag `task` does not take is refused."""
    definition = TASKS[task]
    own = {*definition.inputs, *definition.options, *COMMON_OPTIONS}
    fields: dict[str, Any] = {}
    for flag in flags:
        value = flag.value(given)
        if value is None:
            continue
        if flag.field not in own:
            raise typer.BadParameter(f"{task.value} does not take it (it is an option of: "
                                     f"{takers(flag.field)})", param_hint=flag.flag)
        fields[flag.field] = value
    return fields


def is_local_file(reference: str) -> bool:
    """An image reference naming a file here (else a URL, a data: URI or an upload id)."""
    return not reference.startswith(("http://", "https://", "data:")) and Path(reference).is_file()
