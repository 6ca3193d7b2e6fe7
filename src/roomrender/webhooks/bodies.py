"""The body of a webhook, in the dialect the job was submitted in: a registry the app fills.

Each dialect registers, at start, how it renders a job's webhook body and which events it sends
(`None`: the events the job asked for). The core never imports a dialect: a job of a dialect that
registered nothing gets the native body, which is registered like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from roomrender.canonical.models import TERMINAL_EVENTS, Job

# (event, job) → the exact text POSTed.
BodyRenderer = Callable[[str, Job], str]

NATIVE = "native"


@dataclass(frozen=True)
class DialectBody:
    render: BodyRenderer
    # None: the events the job asked for (`webhook_events`), the terminal ones by default.
    events: frozenset[str] | None


class WebhookBodies:
    def __init__(self) -> None:
        self._dialects: dict[str, DialectBody] = {}

    def register(self, dialect: str, render: BodyRenderer,
                 events: Iterable[str] | None = None) -> None:
        self._dialects[dialect] = DialectBody(render, None if events is None else frozenset(events))

    def _of(self, dialect: str) -> DialectBody:
        found = self._dialects.get(dialect) or self._dialects.get(NATIVE)
        if found is None:
            raise LookupError(f"no webhook body registered for {dialect!r} nor {NATIVE!r}")
        return found

    def wanted_events(self, dialect: str, requested: list[str] | None) -> frozenset[str]:
        """The events a job of this dialect calls its webhook for."""
        events = self._of(dialect).events
        if events is not None:
            return events
        return frozenset(requested if requested is not None else TERMINAL_EVENTS)

    def render(self, event: str, job: Job) -> str:
        return self._of(job.dialect).render(event, job)

    def render_native(self, event: str, job: Job) -> str:
        return self._of(NATIVE).render(event, job)
