"""Video clips written frame by frame: an H.264 MP4 that browsers play (yuv420p, no audio track,
its index first so it starts playing while it downloads), through PyAV's bindings of FFmpeg.
Frames go to the encoder as they are made, so memory stays flat whatever the clip's length."""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import av
import numpy as np
from PIL import Image

T = TypeVar("T")

# libx264's constant quality: visually clean for room tours, a few MB for 5 s of 720p.
QUALITY_CRF = "20"


class ClipWriter:
    """An MP4 being written to a temporary file. Use it as a context manager: leaving the block
    normally finishes the file (`path`); leaving it by an exception deletes it, so a failed or
    canceled clip leaves nothing behind."""

    def __init__(self, width: int, height: int, fps: int, directory: Path | None = None) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"a yuv420p frame needs even sides, not {width}x{height}")
        handle, name = tempfile.mkstemp(prefix="roomrender-clip-", suffix=".mp4", dir=directory)
        os.close(handle)
        self.path = Path(name)
        self.width, self.height, self.fps = width, height, fps
        self.frames = 0
        try:
            self._container = av.open(name, "w", format="mp4", options={"movflags": "+faststart"})
            self._stream = self._container.add_stream(
                "libx264", rate=Fraction(fps), options={"crf": QUALITY_CRF, "preset": "veryfast"})
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = "yuv420p"
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise

    def write(self, frame: Image.Image | np.ndarray) -> None:
        pixels = np.asarray(frame.convert("RGB") if isinstance(frame, Image.Image) else frame)
        if pixels.shape[:2] != (self.height, self.width):
            raise ValueError(f"a frame of {pixels.shape[1]}x{pixels.shape[0]} in a "
                             f"{self.width}x{self.height} clip")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels, dtype=np.uint8),
                                                 format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames += 1

    def finish(self) -> Path:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        return self.path

    def discard(self) -> None:
        try:
            self._container.close()
        except Exception:  # the half-written file is deleted just below either way
            pass
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.finish()
        else:
            self.discard()


_DONE = object()


def prefetched(items: Iterable[T], depth: int = 3) -> Iterator[T]:
    """`items`, made by a thread of their own up to `depth` ahead: the next frames are resampled
    (Pillow works outside the GIL) while this thread encodes, so two cores share a clip. Memory
    holds at most `depth` waiting frames. Leaving the loop early (a cancel) stops the producer."""
    waiting: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        waiting.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            waiting.put(_DONE)
        except BaseException as failure:  # handed to the consumer, raised there
            waiting.put(failure)

    producer = threading.Thread(target=produce, name="clip-frames", daemon=True)
    producer.start()
    try:
        while True:
            item = waiting.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join()
