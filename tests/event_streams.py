"""Reading a job's Server-Sent Events in tests, whichever client holds the response."""

from __future__ import annotations

import json
from typing import Any, Protocol


class LineResponse(Protocol):
    def iter_lines(self) -> Any: ...


class Stream:
    """An SSE stream read line by line: `next()` gives (event, data) or ("comment", text)."""

    def __init__(self, response: LineResponse) -> None:
        self.response = response
        self.lines = response.iter_lines()

    def next(self) -> tuple[str, Any]:
        event = ""
        for line in self.lines:
            if line.startswith(":"):
                return "comment", line[1:].strip()
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                return event, json.loads(line[5:])
        raise AssertionError("the stream ended")

    def until_end(self) -> list[tuple[str, Any]]:
        """Every event up to and with `end` (keep-alive comments included)."""
        events = []
        while True:
            event = self.next()
            events.append(event)
            if event[0] == "end":
                return events
