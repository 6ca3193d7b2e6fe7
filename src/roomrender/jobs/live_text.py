"""A text job's answer as it forms (chat): the new text since the last change, on the change feed.

The engine hands the worker its answer so far (`BatchContext.partial_text`); `LiveText` sends the
new part at most every `TEXT_INTERVAL_SECONDS` per job, and all that is left when the engine is
done (`flush`, before the job's end is written, so a watcher has every piece before the end).
Nothing is stored: the final answer is the job's text output.

Topic "job.text", key the job's id, data {"at": offset of the piece in the answer, "text":
the piece}, pieces cut to fit a change carried between processes. Carried by PostgreSQL's
NOTIFY; on SQLite only this process's watchers hear it (the API and its workers in one process).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from roomrender.events.feed import Change

TEXT_TOPIC = "job.text"
TEXT_INTERVAL_SECONDS = 0.2
# Characters per change: 1000 JSON-escaped characters (6 bytes at most each) fit a carried change.
PIECE_CHARS = 1000


def text_changes(job_id: str, at: int, text: str) -> list[Change]:
    """`text`, starting at offset `at` of the job's answer, as changes small enough to carry."""
    return [Change(TEXT_TOPIC, job_id, {"at": at + start, "text": text[start:start + PIECE_CHARS]})
            for start in range(0, len(text), PIECE_CHARS)]


class LiveText:
    """Takes the answers so far of the worker's jobs and publishes their new parts, throttled."""

    def __init__(self, publish: Callable[[Sequence[Change]], None],
                 interval: float = TEXT_INTERVAL_SECONDS) -> None:
        self._publish = publish
        self._interval = interval
        self._lock = threading.Lock()
        self._latest: dict[str, str] = {}
        self._sent: dict[str, str] = {}
        self._last: dict[str, float] = {}

    def offer(self, job_id: str, text: str) -> None:
        with self._lock:
            self._latest[job_id] = text
            due = time.monotonic() - self._last.get(job_id, 0.0) >= self._interval
        if due:
            self._send(job_id)

    def flush(self, job_ids: Sequence[str]) -> None:
        """Publish what is left of these jobs' text, and forget them."""
        for job_id in job_ids:
            self._send(job_id)
            with self._lock:
                for state in (self._latest, self._sent, self._last):
                    state.pop(job_id, None)

    def _send(self, job_id: str) -> None:
        with self._lock:
            text = self._latest.get(job_id)
            sent = self._sent.get(job_id, "")
            if text is None or text == sent:
                return
            # Where the new text departs from what was sent (the end of it, when it grows).
            at = len(sent) if text.startswith(sent) else _common_prefix(text, sent)
            self._sent[job_id] = text
            self._last[job_id] = time.monotonic()
        self._publish(text_changes(job_id, at, text[at:]))


def _common_prefix(a: str, b: str) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length
