"""Keeping a rate-limit test inside one window of the `limits` sliding-window counter.

Its windows sit on a grid of the limit's period from the epoch, and a hit just after a window
edge counts the previous window's hits a little less than whole (`floor(previous * share +
current)`): a test that crosses an edge may see one more request pass than the limit. The tests
use hourly limits and start away from the hour's edge, so what they count is exact."""

from __future__ import annotations

import time

HOUR = 3600.0


def away_from_window_edge(period: float = HOUR, margin: float = 30.0) -> None:
    """Return once at least `margin` seconds are left in the current window of `period`."""
    left = period - time.time() % period
    if left < margin:
        time.sleep(left + 0.05)
