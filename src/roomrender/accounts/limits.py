"""A key's limit on jobs queued and running at once: its own, else the server's."""

from __future__ import annotations

from roomrender.accounts.keys import ApiKey
from roomrender.canonical.errors import RateLimited


def max_active_jobs(key: ApiKey, server_default: int | None) -> int | None:
    """How many jobs `key` may have queued and running at once (None: no limit)."""
    return key.max_active_jobs if key.max_active_jobs is not None else server_default


def too_many_active_jobs(max_active: int) -> RateLimited:
    return RateLimited(f"this key has {max_active} jobs queued or running, as many as it may; "
                       "submit more when some have finished", code="too_many_active_jobs",
                       retry_after=5.0)
