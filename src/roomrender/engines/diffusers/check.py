"""What each task needs and what of it is here: the data behind `roomrender models check`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roomrender.canonical.models import Task
from roomrender.engines.diffusers.loading import Presence, fetch_hint, locate
from roomrender.engines.diffusers.registry import ModelSpec, Registry

OPTIONAL_NOTE = "optional: without it speed=fast only halves the steps; fetch it with"


@dataclass(frozen=True)
class TaskModels:
    task: Task
    # The required models, then the optional ones (the few-step LoRA).
    models: list[Presence]
    optional: frozenset[str] = frozenset()

    @property
    def ready(self) -> bool:
        return all(p.present for p in self.models if p.spec.key not in self.optional)

    @property
    def missing(self) -> list[ModelSpec]:
        return [p.spec for p in self.models if not p.present and p.spec.key not in self.optional]

    @property
    def missing_optional(self) -> list[ModelSpec]:
        return [p.spec for p in self.models if not p.present and p.spec.key in self.optional]


def check_models(registry: Registry, models_dir: Path | None) -> list[TaskModels]:
    found: dict[str, Presence] = {}
    report = []
    for task in registry.tasks:
        presences = []
        for spec in registry.models_for(task):
            if spec.key not in found:
                found[spec.key] = locate(spec, models_dir)
            presences.append(found[spec.key])
        optional = registry.optional_models_for(task)
        for spec in optional:
            presence = locate(spec, models_dir)
            if not presence.present:
                # `models check` prints `missing` with these notes; it exits 0 for optional ones.
                presence = Presence(spec, presence.path,
                                    (*presence.missing, f"{OPTIONAL_NOTE} {fetch_hint(spec, models_dir)}"))
            presences.append(presence)
        report.append(TaskModels(task, presences, frozenset(spec.key for spec in optional)))
    return report


def fetch_commands(report: list[TaskModels], models_dir: Path | None) -> list[str]:
    """One command per missing model, each once."""
    seen: dict[str, str] = {}
    for entry in report:
        for spec in entry.missing:
            seen.setdefault(spec.key, fetch_hint(spec, models_dir))
    return list(seen.values())
