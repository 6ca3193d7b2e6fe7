"""Luw's own prices: the credits a Luw generator costs (data/luw.json's `credits`), which may
differ from its canonical task's (a `fluw` picture costs 2 on Luw, a native text_to_image 1)."""

from __future__ import annotations

from typing import Any

from roomrender.api.luw.params import luw_data
from roomrender.canonical.models import GenerationRequest, Task
from roomrender.canonical.tasks import TASKS
from roomrender.config import Settings


def model_credits() -> dict[str, int]:
    """Credits per model, as Luw documents them (per image where the task counts images)."""
    table: dict[str, Any] = luw_data()["credits"]
    return {model: int(value) for model, value in table.items() if not model.startswith("_")}


def luw_price(model: str | None, request: GenerationRequest, settings: Settings) -> int | None:
    """What this Luw call costs, or None for the canonical task's cost (a model without a price)."""
    if request.task == Task.video:
        # A clip costs what a Luw clip costs, whatever its length.
        return settings.luw_video_credits
    credits = model_credits().get((model or "").lower())
    if credits is None:
        return None
    per_image = TASKS[request.task].cost.counted_by == "n"
    return credits * (request.n if per_image else 1)
