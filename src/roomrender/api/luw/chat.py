"""Luw's archigpt: synchronous. /v2/generate waits for the chat job on the change feed (the SSE
streams' watchers: an await, never a blocked event loop) up to ROOMRENDER_LUW_CHAT_TIMEOUT_SECONDS,
then answers `{"status": true, "message", "usage", "left"}`; past the timeout, Luw's "processing"
answer with the processing_url to poll; a failure in Luw's failure shape."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.concurrency import run_in_threadpool

from roomrender.accounts.keys import ApiKey
from roomrender.api.deps import Services
from roomrender.api.luw.presenters import UNLIMITED_CREDITS, result_body
from roomrender.canonical.models import Job, JobStatus
from roomrender.canonical.tasks import words_read
from roomrender.jobs.conversations import answer_text


async def _finished(svc: Services, key: ApiKey, job: Job, timeout: float) -> Job:
    """The job once it has ended, or as it stands when `timeout` seconds have passed."""
    if job.status.is_terminal:
        return job
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    watch = await svc.watchers.watch(key.id, job.id)
    try:
        current = watch.job or job
        while not current.status.is_terminal:
            left = deadline - loop.time()
            if left <= 0:
                break
            update = await watch.next(left)
            if update is None:
                break
            current = update.job
    finally:
        watch.close()
    if not current.status.is_terminal:
        return current
    # The stored row, outputs and all.
    return await run_in_threadpool(svc.jobs.get, key, job.id)


def _answer_body(svc: Services, key: ApiKey, job: Job) -> dict[str, Any]:
    message = answer_text(job, svc.storage.get)
    balance = svc.jobs.credits(key)
    left = UNLIMITED_CREDITS if balance["granted"] is None else balance["available"]
    return {"status": True, "message": message, "id": job.id,
            "usage": {"input_words": words_read(job.request), "output_words": len(message.split()),
                      "credits": job.cost},
            "left": left}


async def answer_synchronously(svc: Services, key: ApiKey, job: Job) -> dict[str, Any]:
    """What /v2/generate answers for an archigpt job (see the module's text)."""
    done = await _finished(svc, key, job, svc.settings.luw_chat_timeout_seconds)
    if done.status != JobStatus.succeeded:
        return result_body(done, svc.storage)
    return await run_in_threadpool(_answer_body, svc, key, done)
