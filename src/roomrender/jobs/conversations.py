"""Chat conversations: a follow-up names the job it continues (`conversation`), which must be a
chat of the same key (another key's is "not found", as any job of another key is); its earlier
turns are read from that job (its request's history, its prompt and its stored answer) and
carried in the new request's `history`, never taken from the client."""

from __future__ import annotations

from collections.abc import Callable

from roomrender.canonical.errors import InvalidRequest, NotFound
from roomrender.canonical.models import (
    MAX_CHAT_ANSWER_LENGTH,
    MAX_CHAT_TURNS,
    ChatTurn,
    GenerationRequest,
    Job,
    JobStatus,
    Task,
)


def answer_text(job: Job, read: Callable[[str], bytes]) -> str:
    """A chat job's stored answer (its text output), or "" if it has none."""
    for output in job.outputs:
        if output.content_type.startswith("text/"):
            return read(output.key).decode("utf-8", errors="replace")
    return ""


def with_history(request: GenerationRequest, find: Callable[[str], Job],
                 read: Callable[[str], bytes]) -> GenerationRequest:
    """The request with the turns of the conversation it continues (none for a new one).
    `find`: the key's own job by id (NotFound otherwise); `read`: a stored file's bytes."""
    if request.task != Task.chat:
        return request if not request.history else request.model_copy(update={"history": []})
    if not request.conversation:
        return request.model_copy(update={"history": []})
    try:
        before = find(request.conversation)
    except NotFound:
        raise NotFound(f"no conversation {request.conversation[:100]!r}") from None
    if before.task != Task.chat:
        raise NotFound(f"no conversation {request.conversation!r}: that job is a {before.task.value}")
    if before.status != JobStatus.succeeded:
        raise InvalidRequest(f"the conversation's last answer is not ready (its job is "
                             f"{before.status.value}): follow up once it has succeeded")
    answer = answer_text(before, read)[:MAX_CHAT_ANSWER_LENGTH]
    turns = [*before.request.history, ChatTurn(prompt=before.request.prompt or "", answer=answer)]
    return request.model_copy(update={"history": turns[-MAX_CHAT_TURNS:]})
