"""Running a short database read from an async endpoint, on threads of its own; and the one
way every dialect reads a job for a poll (`read_job`), on the event loop.

Reads (the poll routes, a key looked up) never wait for a thread behind slow work such as a
submit fetching an image: they take their tokens from their own limiter, not from the default
pool the sync routes share.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from sqlalchemy import Engine

from roomrender.accounts.keys import ApiKey
from roomrender.canonical.models import Job
from roomrender.jobs.service import JobService

T = TypeVar("T")
READ_THREADS = 16
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = (
    weakref.WeakKeyDictionary())


def _limiter() -> CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = CapacityLimiter(READ_THREADS)
    return limiter


async def in_read_thread(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` on a thread reserved for short reads."""
    return await anyio.to_thread.run_sync(function, *args, limiter=_limiter())


async def read(db: Engine, function: Callable[..., T], *args: Any) -> T:
    """Call `function(*args)`, a read of a few rows by key. SQLite answers in-process in a fraction
    of a millisecond without waiting on writers (WAL), less than a hop to the thread pool costs
    under load, so it runs inline; a networked database runs on a read thread."""
    if db.dialect.name == "sqlite":
        return function(*args)
    return await in_read_thread(function, *args)


class JobReader(Protocol):
    """What `read_job` uses of the process's services (`api.deps.Services` has it)."""

    @property
    def db(self) -> Engine: ...
    @property
    def jobs(self) -> JobService: ...


async def read_job(services: JobReader, owner: ApiKey, job_id: str) -> Job:
    """A job of `owner` as a poll answers it (NotFound otherwise): every dialect's poll route
    reads it this way, from the event loop, without a hop to the request thread pool."""
    return await read(services.db, services.jobs.get, owner, job_id)
