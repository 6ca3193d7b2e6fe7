"""Running a short database read from an async endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

T = TypeVar("T")


async def read(db: Engine, function: Callable[..., T], *args: Any) -> T:
    """Call `function(*args)`, a read of a few rows by key. SQLite answers in-process in a fraction
    of a millisecond without waiting on writers (WAL), less than a hop to the thread pool costs
    under load, so it runs inline; a networked database runs in the thread pool."""
    if db.dialect.name == "sqlite":
        return function(*args)
    return await run_in_threadpool(function, *args)
