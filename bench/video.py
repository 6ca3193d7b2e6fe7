"""The preview engine's room tour: how long a clip takes and what memory it needs.

Films a 1920x1080 room photo along a camera move, as the worker would (frames streamed to the
H.264 encoder), and prints wall and CPU time, and the resident memory above the process's idle
(everything imported, the photo decoded), sampled every 5 ms while the clip is made. Memory must
stay flat whatever the length: the 10 s 1080p clip also prints its resident memory at a quarter,
half and all of its frames.

    .venv/bin/python bench/video.py [--move dolly_in]

Goals (issue 26): a 5 s 720p clip in under 5 s, under 300 MB above idle.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from roomrender.canonical.models import GenerationRequest  # noqa: E402
from roomrender.engines.base import BatchContext, EngineJob  # noqa: E402
from roomrender.engines.preview.tour import render_tour  # noqa: E402
from roomrender.samples import room_image  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


def resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakSampler:
    """The highest resident memory seen while it runs."""

    def __init__(self) -> None:
        self.peak = resident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, resident())

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, resident())


def clip(move: str, seconds: float, resolution: str) -> None:
    photo = room_image(1920, 1080)
    request = GenerationRequest(task="video", image="bench", camera=move, duration=seconds,
                                resolution=resolution)  # type: ignore[arg-type]
    checkpoints: dict[int, float] = {}

    def report(job_id: str, fraction: float) -> None:
        for quarter in (25, 50, 100):
            if fraction * 100 >= quarter and quarter not in checkpoints:
                checkpoints[quarter] = (resident() - idle) / MB

    idle = resident()
    started, cpu = time.perf_counter(), time.process_time()
    with PeakSampler() as sampler:
        video = render_tour(EngineJob("bench", request, {"image": photo}),
                            BatchContext(report, lambda job_id: False))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    size = video.path.stat().st_size / MB
    video.path.unlink()
    print(f"{seconds:>4.0f} s {resolution:>5} {move}: {video.width}x{video.height} "
          f"{round(seconds * video.fps)} frames, {wall:.2f} s wall, {cpu:.2f} s CPU, "
          f"peak {(sampler.peak - idle) / MB:.0f} MB above idle; {size:.1f} MB file; above idle at "
          + ", ".join(f"{q}%: {mb:.0f} MB" for q, mb in checkpoints.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--move", default="dolly_in")
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    # The first clip pays for the encoder's start-up; measured clips follow it.
    clip(args.move, 2, "480p")
    clip(args.move, 5, "720p")
    clip(args.move, 10, "1080p")


if __name__ == "__main__":
    main()
