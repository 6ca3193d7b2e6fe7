"""The Replicate models this server answers for (data/replicate_models.json), their versions and
input schemas, and the translation of a prediction's `input` into canonical request fields.

An input is checked against its model's schema the way Replicate checks it: values are coerced
as Cog's pydantic does (`"20"` for an integer, `1` for a string choice), then validated as JSON
Schema; what fails is told as Replicate's `invalid_fields` (`{type, field, description}`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError as SchemaError

from roomrender.canonical.errors import InvalidRequest
from roomrender.canonical.models import GenerationRequest, Task
from roomrender.canonical.tasks import TASK_INPUTS
from roomrender.catalog import load_data_file, room_types, styles

# Canonical fields that hold image references (a /v1/files URL there becomes an upload id).
IMAGE_FIELDS = ("image", "mask", "reference_image", "product_image")
IMAGE_LIST_FIELDS = ("extra_images",)
OUTPUT_SCHEMAS: dict[str, dict[str, Any]] = {
    "image": {"type": "string", "format": "uri", "title": "Output"},
    "images": {"type": "array", "title": "Output", "items": {"type": "string", "format": "uri"}},
    "segments": {"type": "array", "title": "Output", "items": {
        "type": "object", "required": ["label", "mask"],
        "properties": {"label": {"type": "string"}, "mask": {"type": "string", "format": "uri"}}}},
}


class InputInvalid(InvalidRequest):
    """An input its model's schema refuses; `details` holds Replicate's `invalid_fields`."""

    code = "input_invalid"


@dataclass(frozen=True)
class InputMapping:
    """Where one input of a model goes in the canonical request."""

    to: str | None = None
    cast: str | None = None
    append_to: str | None = None
    unused: str | None = None


@dataclass(frozen=True)
class ModelVersion:
    id: str
    created_at: str
    openapi_schema: dict[str, Any]


@dataclass(frozen=True)
class ReplicateModel:
    owner: str
    name: str
    description: str
    task: Task
    output: str
    inputs: dict[str, InputMapping]
    versions: tuple[ModelVersion, ...]
    fixed: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def latest(self) -> ModelVersion:
        return self.versions[0]

    @property
    def input_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = self.latest.openapi_schema["components"]["schemas"]["Input"]
        return schema

    def version(self, version_id: str) -> ModelVersion | None:
        return next((v for v in self.versions if v.id == version_id), None)


@dataclass(frozen=True)
class ModelCatalog:
    models: dict[str, ReplicateModel]
    cog_version: str

    def find(self, ref: str) -> ReplicateModel | None:
        return self.models.get(ref)

    def by_version(self, version_id: str) -> tuple[ReplicateModel, ModelVersion] | None:
        for model in self.models.values():
            found = model.version(version_id)
            if found is not None:
                return model, found
        return None


def openapi_schema(input_schema: dict[str, Any], output_schema: dict[str, Any]) -> dict[str, Any]:
    """A version's `openapi_schema`, shaped as Cog publishes it (what clients read)."""
    return {"openapi": "3.0.2", "info": {"title": "Cog", "version": "0.1.0"}, "paths": {},
            "components": {"schemas": {"Input": input_schema, "Output": output_schema}}}


# -- the roomrender/<task> models, from the canonical request ---------------------------------

def _plain(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """A pydantic field schema as a plain one: `X | None` as X, references inlined."""
    if "$ref" in schema:
        schema = {**definitions[schema["$ref"].rsplit("/", 1)[-1]],
                  **{k: v for k, v in schema.items() if k != "$ref"}}
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    if len(options) == 1:
        schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **_plain(options[0], definitions)}
    if schema.get("default", 0) is None:
        schema = {k: v for k, v in schema.items() if k != "default"}
    return schema


def canonical_input_schema(task: Task, names: list[str], descriptions: dict[str, str]) -> dict[str, Any]:
    source = GenerationRequest.model_json_schema()
    definitions = source.get("$defs", {})
    properties: dict[str, Any] = {}
    for order, name in enumerate(names):
        prop = _plain(source["properties"][name], definitions)
        prop.pop("title", None)
        prop.pop("description", None)
        prop = {**prop, "title": name.replace("_", " ").title(), "x-order": order,
                "description": descriptions[name]}
        if name in IMAGE_FIELDS:
            prop["format"] = "uri"
        if name in IMAGE_LIST_FIELDS:
            prop["items"] = {"type": "string", "format": "uri"}
        if name == "style":
            prop["enum"] = sorted(styles())
        if name == "room_type":
            prop["enum"] = sorted(room_types())
        properties[name] = prop
    # A rule of the task's canonical inputs that names one field makes it required.
    required = [rule.fields[0] for rule in TASK_INPUTS[task]
                if len(rule.fields) == 1 and rule.fields[0] in properties]
    return {"type": "object", "title": "Input", "required": required,
            "additionalProperties": False, "properties": properties}


def _roomrender_model(entry: dict[str, Any], descriptions: dict[str, str], created_at: str) -> ReplicateModel:
    task = Task(entry["task"])
    name = task.value.replace("_", "-")
    schema = openapi_schema(canonical_input_schema(task, entry["inputs"], descriptions),
                            OUTPUT_SCHEMAS[entry["output"]])
    # Like Cog's version ids, derived from what the version is: here its name and schema.
    version_id = hashlib.sha256(json.dumps({"model": f"roomrender/{name}", "schema": schema},
                                           sort_keys=True).encode()).hexdigest()
    return ReplicateModel(
        owner="roomrender", name=name, description=entry["description"], task=task,
        output=entry["output"], inputs={n: InputMapping(to=n) for n in entry["inputs"]},
        versions=(ModelVersion(version_id, created_at, schema),))


def _public_model(entry: dict[str, Any]) -> ReplicateModel:
    schema = openapi_schema(entry["schema"]["Input"], entry["schema"]["Output"])
    inputs = {name: InputMapping(to=spec.get("to"), cast=spec.get("as"),
                                 append_to=spec.get("append_to"), unused=spec.get("unused"))
              for name, spec in entry["inputs"].items()}
    missing = set(entry["schema"]["Input"]["properties"]) ^ set(inputs)
    if missing:
        raise ValueError(f"{entry['owner']}/{entry['name']}: inputs and schema differ on {sorted(missing)}")
    return ReplicateModel(
        owner=entry["owner"], name=entry["name"], description=entry["description"],
        task=Task(entry["task"]), output=entry["output"], inputs=inputs, fixed=dict(entry["fixed"]),
        versions=tuple(ModelVersion(v["id"], v["created_at"], schema) for v in entry["versions"]))


@cache
def model_catalog() -> ModelCatalog:
    data = load_data_file("replicate_models.json")
    models = [_public_model(entry) for entry in data["models"]]
    own = data["roomrender_models"]
    models += [_roomrender_model(entry, own["fields"], own["created_at"]) for entry in own["models"]]
    return ModelCatalog({model.ref: model for model in models}, data["cog_version"])


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- checking an input --------------------------------------------------------------------------

def _coerce(value: Any, schema: dict[str, Any]) -> Any:
    """What Cog's pydantic makes of a value for a field of this type (lax scalars)."""
    kind = schema.get("type")
    if isinstance(value, bool):
        return value
    if kind == "integer" and isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
        return int(number) if number.is_integer() else value
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "number" and isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    if kind == "string" and isinstance(value, int | float):
        return str(value)
    if kind == "boolean" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "null" if value is None else "object"


def describe(error: SchemaError) -> dict[str, str]:
    """A JSON Schema error as one of Replicate's `invalid_fields`, in its words."""
    path = ".".join(str(part) for part in error.absolute_path)
    where = f"input.{path}" if path else "input"
    spec = error.validator_value
    if error.validator == "required":
        missing = str(error.message).split("'")[1]
        return {"type": "required", "field": where, "description": f"{missing} is required"}
    if error.validator == "additionalProperties":
        given = error.instance if isinstance(error.instance, dict) else {}
        extra = sorted(set(given) - set(error.schema.get("properties", {})))
        return {"type": "additional_property_not_allowed", "field": where,
                "description": f"Additional property {', '.join(extra)} is not allowed"}
    return {"type": str(error.validator), "field": where,
            "description": _message(str(error.validator), spec, path, error)}


def _message(validator: str, spec: Any, path: str, error: SchemaError) -> str:
    if validator == "maximum":
        return f"Must be less than or equal to {spec}"
    if validator == "minimum":
        return f"Must be greater than or equal to {spec}"
    if validator == "enum":
        return f"{path or 'input'} must be one of the following: " + ", ".join(json.dumps(i) for i in spec)
    if validator == "type":
        return f"Invalid type. Expected: {spec}, given: {_type_name(error.instance)}"
    if validator == "maxLength":
        return f"String length must be less than or equal to {spec}"
    if validator == "minLength":
        return f"String length must be greater than or equal to {spec}"
    if validator == "maxItems":
        return f"Array must have at most {spec} items"
    if validator == "pattern":
        return f"Does not match pattern '{spec}'"
    return str(error.message)


def invalid(fields: list[dict[str, str]]) -> InputInvalid:
    detail = "".join(f"- {item['field']}: {item['description']}\n" for item in fields)
    return InputInvalid(detail, details=fields)


def checked_input(model: ReplicateModel, given: dict[str, Any]) -> dict[str, Any]:
    """The input as the model's schema reads it: nulls dropped (an absent value), scalars
    coerced; raises InputInvalid with every problem."""
    schema = model.input_schema
    properties = schema["properties"]
    values = {name: _coerce(value, properties.get(name, {}))
              for name, value in given.items() if value is not None}
    errors = schema_errors(schema, values)
    if errors:
        raise invalid([describe(error) for error in errors])
    return values


def schema_errors(schema: dict[str, Any], instance: Any) -> list[SchemaError]:
    """Every error, in a stable order: by field, a missing field first, then one not allowed."""
    rank = {"required": 0, "additionalProperties": 1}
    return sorted(Draft7Validator(schema).iter_errors(instance),
                  key=lambda e: ([str(p) for p in e.absolute_path], rank.get(str(e.validator), 2)))


# -- input → canonical fields -------------------------------------------------------------------

def canonical_fields(model: ReplicateModel, values: dict[str, Any],
                     file_ref: Callable[[str], str]) -> dict[str, Any]:
    """The canonical request fields of a checked input (the model's defaults applied, as the
    model applies them); `file_ref` turns this server's /v1/files URLs into upload ids."""
    properties = model.input_schema["properties"]
    present = {name: values[name] if name in values else properties[name]["default"]
               for name in model.inputs if name in values or "default" in properties[name]}
    fields: dict[str, Any] = {"task": model.task, **model.fixed}
    suffixes: dict[str, list[str]] = {}
    for name, value in present.items():
        mapping = model.inputs[name]
        if mapping.append_to is not None:
            if str(value).strip():
                suffixes.setdefault(mapping.append_to, []).append(str(value).strip())
        elif mapping.to is not None:
            fields[mapping.to] = int(value) if mapping.cast == "integer" else value
    for target, parts in suffixes.items():
        fields[target] = ", ".join([fields[target], *parts] if fields.get(target) else parts)
    for name in IMAGE_FIELDS:
        if isinstance(fields.get(name), str):
            fields[name] = file_ref(fields[name])
    for name in IMAGE_LIST_FIELDS:
        if isinstance(fields.get(name), list):
            fields[name] = [file_ref(str(item)) for item in fields[name]]
    return fields


def wire_name(model: ReplicateModel, canonical: str) -> str:
    """The input that sets a canonical field (for errors found on the canonical request)."""
    for name, mapping in model.inputs.items():
        if mapping.to == canonical:
            return name
    return canonical


def unused_inputs(model: ReplicateModel, given: dict[str, Any]) -> list[str]:
    """Notes on the inputs given that roomrender accepts but does not use."""
    return [f"{name}: accepted, not used ({model.inputs[name].unused})"
            for name in given if name in model.inputs and model.inputs[name].unused]
