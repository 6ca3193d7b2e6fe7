"""A change, as published in-process and carried between processes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; a larger change travels without its
# data, and its subscribers read what they need.
MAX_PAYLOAD_BYTES = 7900


@dataclass(frozen=True)
class Change:
    """Something that changed: `topic` ("job", "outbox"), `key` (a job id), and its `data`
    (JSON-able; None when it was too large to carry between processes)."""

    topic: str
    key: str = ""
    data: dict[str, Any] | None = None

    def to_payload(self, origin: str) -> str:
        payload = json.dumps({"o": origin, "t": self.topic, "k": self.key, "d": self.data},
                             separators=(",", ":"), default=str)
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            payload = json.dumps({"o": origin, "t": self.topic, "k": self.key, "d": None},
                                 separators=(",", ":"))
        return payload

    @staticmethod
    def from_payload(payload: str) -> tuple[str, Change]:
        """(origin, change) from a payload made by `to_payload`."""
        raw = json.loads(payload)
        return raw["o"], Change(raw["t"], raw["k"], raw["d"])
