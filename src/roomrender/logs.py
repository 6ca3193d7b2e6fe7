"""Logging: plain text by default, one JSON object per line with ROOMRENDER_LOG_FORMAT=json.

What a line is about (job id, key prefix, dialect, task...) travels in a context variable:
`bound(...)` adds fields for a block (a request, a batch, one job), `add(...)` for the rest of
the current task, and the JSON formatter writes them on every line logged meanwhile, from any
logger (uvicorn's access log included). Threads start with no fields: whoever starts one binds
what its lines are about.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token, copy_context
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from roomrender.jobs.records import JobRecord

TEXT_FORMAT = "%(asctime)s %(name)s %(message)s"
_fields: ContextVar[Mapping[str, Any]] = ContextVar("roomrender_log_fields",
                                                   default=MappingProxyType({}))
# Attributes every LogRecord has: anything else on a record came from `extra=` and is written.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message"}

log = logging.getLogger("roomrender.jobs")


def fields() -> Mapping[str, Any]:
    """The fields bound here."""
    return _fields.get()


def add(**more: Any) -> None:
    """Bind fields for the rest of the current context (a request's task, a thread)."""
    _fields.set({**_fields.get(), **{k: v for k, v in more.items() if v is not None}})


def push(**more: Any) -> Token[Mapping[str, Any]]:
    """Bind fields until `pop` (a `bound` without the context manager, for hot paths)."""
    return _fields.set({**_fields.get(), **more})


def pop(token: Token[Mapping[str, Any]]) -> None:
    _fields.reset(token)


@contextmanager
def bound(**more: Any) -> Iterator[None]:
    """Bind fields for the lines logged inside this block."""
    token = _fields.set({**_fields.get(), **{k: v for k, v in more.items() if v is not None}})
    try:
        yield
    finally:
        _fields.reset(token)


def carried(function: Callable[[], None]) -> Callable[[], None]:
    """`function`, to run on another thread with the fields bound here."""
    context = copy_context()
    return lambda: context.run(function)


def job_fields(record: JobRecord, key_prefix: str | None = None) -> dict[str, Any]:
    """The fields of a line about one job."""
    return {"job_id": record.id, "key_prefix": key_prefix, "dialect": record.dialect,
            "task": record.task, "engine": record.engine}


def batch_fields(records: Iterable[JobRecord], key_prefixes: Mapping[str, str]) -> dict[str, Any]:
    """The fields of a line about a batch: its job ids, and each other field as one value when
    every job shares it, else as the list of its values."""
    batch = list(records)
    found: dict[str, Any] = {"job_id": [record.id for record in batch]}
    for name, values in (("key_prefix", [key_prefixes.get(record.owner_id) for record in batch]),
                         ("dialect", [record.dialect for record in batch]),
                         ("task", [record.task for record in batch]),
                         ("engine", [record.engine for record in batch])):
        distinct = list(dict.fromkeys(values))
        found[name] = distinct[0] if len(distinct) == 1 else distinct
    return found


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", the bound fields, `extra=` fields, "exception"}."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields.get())
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each line to whatever `sys.stderr` is when it is logged: a process's stderr can be
    swapped after logging is set up (a command run in-process by a CLI runner, then closed), and a
    handler holding the old stream would write into a closed file."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(level: str | int = "INFO", log_format: str = "text") -> None:
    """Set up the root logger of a roomrender process: `text` (the default) or `json`."""
    if log_format not in ("text", "json"):
        raise ValueError(f"ROOMRENDER_LOG_FORMAT must be text or json, not {log_format!r}")
    handler = CurrentStderr()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)


class JobLogHook:
    """A `JobQueue` hook: one line when a job starts and when it ends (and, at debug level, when
    it is queued), with the job's fields, in the process that moved it."""

    def __init__(self, key_prefix: Callable[[str], str | None]) -> None:
        # key id -> its public prefix (KeyStore.prefix_of, which caches it).
        self.key_prefix = key_prefix

    def __call__(self, connection: Any, record: JobRecord, event: str) -> None:
        if event == "job.progress":
            return
        level = logging.DEBUG if event == "job.queued" else logging.INFO
        if not log.isEnabledFor(level):
            return
        with bound(**job_fields(record, self.key_prefix(record.owner_id))):
            if event == "job.failed":
                log.log(level, "job %s failed: %s: %s", record.id, record.error_code,
                        record.error_message)
            elif event in ("job.succeeded", "job.canceled") and record.started_at is not None:
                log.log(level, "job %s %s after %.3f s", record.id, event[4:],
                        (record.finished_at or time.time()) - record.created_at)
            elif event == "job.started":
                log.log(level, "job %s started (attempt %d) on %s", record.id, record.attempts,
                        record.lease_owner)
            else:
                log.log(level, "job %s %s", record.id, event[4:])
