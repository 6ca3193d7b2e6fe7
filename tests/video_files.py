"""Reading an MP4 back as a browser would get it: its codec, pixel format, size, rate, frames."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av


@dataclass(frozen=True)
class DecodedClip:
    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float
    frames: int
    audio_streams: int
    index_first: bool  # the moov atom before the media data: plays while it downloads

    @property
    def duration(self) -> float:
        return self.frames / self.fps


def decode(data: bytes) -> DecodedClip:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return DecodedClip(stream.codec_context.name, str(stream.codec_context.pix_fmt),
                           stream.codec_context.width, stream.codec_context.height,
                           float(stream.average_rate or 0), frames, len(container.streams.audio),
                           0 <= data.find(b"moov") < data.find(b"mdat"))
