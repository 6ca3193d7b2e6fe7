"""What each task needs and what of it is here: the data behind `roomrender models check`.

A target chooses the tasks: none, what the server runs for a job that names no family (each task
in the default family, or in the first family that has it); a family (`sdxl`); a task (`restyle`,
in the default family); `family:task`; or `all` (but licence-gated models: those only by their family
or `family:task`). `models pull` fetches for the same targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roomrender.canonical.models import Task
from roomrender.engines.diffusers.loading import Presence, fetch_hint, locate
from roomrender.engines.diffusers.registry import ModelSpec, Registry, TaskSpec

OPTIONAL_NOTE = "optional: without it speed=fast only halves the steps (or no live previews); fetch it with"


class UnknownTarget(ValueError):
    pass


@dataclass(frozen=True)
class TaskModels:
    task: Task
    # The required models, then the optional ones (the few-step LoRA, the previews' decoder).
    models: list[Presence]
    optional: frozenset[str] = frozenset()
    family: str = ""

    @property
    def name(self) -> str:
        return f"{self.family}:{self.task.value}" if self.family else self.task.value

    @property
    def ready(self) -> bool:
        return all(p.present for p in self.models if p.spec.key not in self.optional)

    @property
    def missing(self) -> list[ModelSpec]:
        return [p.spec for p in self.models if not p.present and p.spec.key not in self.optional]

    @property
    def missing_optional(self) -> list[ModelSpec]:
        return [p.spec for p in self.models if not p.present and p.spec.key in self.optional]


def select(registry: Registry, target: str | None = None, default_family: str | None = None) -> list[TaskSpec]:
    """The task specs a target names (see the module's note)."""
    if not target:
        return list(registry.serving(default_family).values())
    if target == "all":
        # Licence-gated models are pulled and checked only when named (their family, family:task).
        return [spec for spec in registry.all_specs() if not registry.is_gated_task(spec)]
    if target in registry.families:
        return list(registry.families[target].tasks.values())
    family, _, name = target.rpartition(":")
    if family and family not in registry.families:
        raise UnknownTarget(f"no family {family!r}; the registry has {', '.join(registry.families)}")
    try:
        task = Task(name)
    except ValueError:
        raise UnknownTarget(f"{target!r} is neither a task, a family ({', '.join(registry.families)}) "
                            "nor `all`") from None
    spec = registry.spec_for(task, family or None, default_family)
    if spec is None:
        raise UnknownTarget(f"no family of the registry runs {target!r}")
    return [spec]


def check_models(registry: Registry, models_dir: Path | None, specs: list[TaskSpec] | None = None) -> list[TaskModels]:
    found: dict[str, Presence] = {}
    report = []
    for task_spec in specs if specs is not None else list(registry.tasks.values()):
        presences = []
        for spec in registry.models_of(task_spec):
            if spec.key not in found:
                found[spec.key] = locate(spec, models_dir)
            presences.append(found[spec.key])
        optional = registry.optional_models_of(task_spec)
        for spec in optional:
            presence = locate(spec, models_dir)
            if not presence.present:
                # `models check` prints `missing` with these notes; it exits 0 for optional ones.
                presence = Presence(spec, presence.path,
                                    (*presence.missing, f"{OPTIONAL_NOTE} {fetch_hint(spec, models_dir)}"))
            presences.append(presence)
        report.append(TaskModels(task_spec.task, presences, frozenset(spec.key for spec in optional),
                                 task_spec.family))
    return report


def fetch_commands(report: list[TaskModels], models_dir: Path | None) -> list[str]:
    """One command per missing model, each once."""
    seen: dict[str, str] = {}
    for entry in report:
        for spec in entry.missing:
            seen.setdefault(spec.key, fetch_hint(spec, models_dir))
    return list(seen.values())
