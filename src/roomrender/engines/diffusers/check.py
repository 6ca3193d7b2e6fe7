"""What each task needs and what of it is here: the data behind `roomrender models check`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roomrender.engines.diffusers.loading import Presence, fetch_hint, locate
from roomrender.engines.diffusers.registry import ModelSpec, Registry
from roomrender.jobs.models import Task


@dataclass(frozen=True)
class TaskModels:
    task: Task
    models: list[Presence]

    @property
    def ready(self) -> bool:
        return all(p.present for p in self.models)

    @property
    def missing(self) -> list[ModelSpec]:
        return [p.spec for p in self.models if not p.present]


def check_models(registry: Registry, models_dir: Path | None) -> list[TaskModels]:
    found: dict[str, Presence] = {}
    report = []
    for task in registry.tasks:
        presences = []
        for spec in registry.models_for(task):
            if spec.key not in found:
                found[spec.key] = locate(spec, models_dir)
            presences.append(found[spec.key])
        report.append(TaskModels(task, presences))
    return report


def fetch_commands(report: list[TaskModels], models_dir: Path | None) -> list[str]:
    """One command per missing model, each once."""
    seen: dict[str, str] = {}
    for entry in report:
        for spec in entry.missing:
            seen.setdefault(spec.key, fetch_hint(spec, models_dir))
    return list(seen.values())
