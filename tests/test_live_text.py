"""A text job's answer as it forms, on the change feed: the worker's LiveText sends each job's new
text (throttled), long pieces cut to fit a change carried between processes, and the rest at flush."""

from __future__ import annotations

from collections.abc import Sequence

from roomrender.events.change import MAX_PAYLOAD_BYTES, Change
from roomrender.jobs.live_text import TEXT_TOPIC, LiveText


def test_live_text_sends_new_text_only_and_what_is_left_at_flush() -> None:
    published: list[Change] = []

    def publish(changes: Sequence[Change]) -> None:
        published.extend(changes)

    live = LiveText(publish, interval=3600.0)  # after the first piece, only flush sends
    answer = "Warm white walls " + "é€😀 ok " * 400  # non-ASCII: escaped in a carried change
    live.offer("job-1", answer[:5])
    live.offer("job-1", answer[:900])
    live.offer("job-1", answer)
    live.offer("job-2", "Another job's answer")
    live.flush(["job-1", "job-2"])
    live.flush(["job-1"])  # nothing new: nothing sent

    mine = [change for change in published if change.key == "job-1"]
    assert {change.topic for change in published} == {TEXT_TOPIC}
    assert [change.data["at"] for change in mine if change.data] == [0, 5, 1005, 2005]
    assert "".join(change.data["text"] for change in mine if change.data) == answer
    assert all(len(change.to_payload("origin").encode()) < MAX_PAYLOAD_BYTES
               and Change.from_payload(change.to_payload("origin"))[1] == change for change in mine)
    assert [change.data for change in published if change.key == "job-2"] == [
        {"at": 0, "text": "Another job's answer"}]
