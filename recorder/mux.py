"""Blocking Matroska writer for one recording part: muxes encoded frames, never encodes.

Matroska survives a writer crash (frames up to the cut stay decodable), unlike plain MP4.
Every method here blocks on file I/O, so the recorder calls them from its own thread.
"""

from __future__ import annotations

import io
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import OutputContainer
from av.stream import Stream

from streamserver.frames import EncodedFrame

logger = logging.getLogger(__name__)

OPUS_RATE = 48000


def vp8_dimensions(data: bytes) -> tuple[int, int]:
    """Width and height from a VP8 keyframe header (RFC 6386 section 9.1)."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        raise ValueError("not a VP8 keyframe")
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


class PartWriter:
    """Writes one ``media-NNN.mkv``; opens the file at the first video keyframe."""

    def __init__(self, path: Path, expect_video: bool, expect_audio: bool) -> None:
        self.path = path
        self.expect_video = expect_video
        self.expect_audio = expect_audio
        self.frames_written = 0
        self.skipped = 0
        self.start_arrival: float | None = None
        self.last_arrival: float | None = None
        self.video_codec: str | None = None
        self.width = 0
        self.height = 0
        self._container: OutputContainer | None = None
        self._probe: Any = None
        self._streams: dict[str, Stream] = {}
        self._origin: dict[str, int] = {}
        self._last_pts: dict[str, int] = {}

    @property
    def started(self) -> bool:
        return self._container is not None

    def write(self, frame: EncodedFrame) -> None:
        if self._container is None:
            starts = frame.keyframe if self.expect_video else True
            if not starts or (self.expect_video and frame.kind != "video"):
                self.skipped += 1
                return
            self._open(frame)
        stream = self._streams.get(frame.kind)
        if stream is None:
            self.skipped += 1
            return
        if frame.kind not in self._origin:
            # Align tracks on arrival time: aiortc starts every track's clock at 0.
            assert self.start_arrival is not None
            lead = max(0.0, frame.arrival - self.start_arrival)
            self._origin[frame.kind] = frame.pts - round(lead * frame.clock_rate)
        pts = frame.pts - self._origin[frame.kind]
        last = self._last_pts.get(frame.kind)
        if last is not None and pts <= last:
            pts = last + 1  # the muxer needs strictly increasing timestamps
        self._last_pts[frame.kind] = pts
        packet = av.Packet(frame.data)
        packet.pts = pts
        packet.dts = pts
        packet.time_base = Fraction(1, frame.clock_rate)
        packet.is_keyframe = frame.keyframe
        packet.stream = stream
        assert self._container is not None
        self._container.mux(packet)
        self.frames_written += 1
        self.last_arrival = frame.arrival

    def _open(self, first: EncodedFrame) -> None:
        container = av.open(str(self.path), "w", format="matroska")
        try:
            if self.expect_video:
                self._streams["video"] = self._add_video(container, first)
            if self.expect_audio:
                audio = container.add_stream("libopus", rate=OPUS_RATE, layout="stereo")
                audio.time_base = Fraction(1, OPUS_RATE)
                self._streams["audio"] = audio
            container.metadata["title"] = "SceneLink evidential recording"
            container.start_encoding()  # writes the header; opens no encoder for video
        except Exception:
            container.close()
            raise
        self._container = container
        self.start_arrival = first.arrival

    def _add_video(self, container: OutputContainer, key: EncodedFrame) -> Stream:
        self.video_codec = key.codec
        if key.codec == "VP8":
            self.width, self.height = vp8_dimensions(key.data)
            stream = container.add_mux_stream("vp8", width=self.width, height=self.height)
        elif key.codec == "H264":
            # SPS/PPS for the Matroska header come from the first IDR, via the raw h264
            # demuxer; the stream is created from that template, so no encoder is opened.
            self._probe = av.open(io.BytesIO(key.data), format="h264")
            template = self._probe.streams.video[0]
            self.width = template.codec_context.width
            self.height = template.codec_context.height
            stream = container.add_stream_from_template(template)
        else:
            raise ValueError(f"cannot record video codec {key.codec}")
        stream.time_base = Fraction(1, key.clock_rate)
        return stream

    def close(self) -> None:
        """Write the trailer (Matroska cues and duration)."""
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._probe is not None:
            self._probe.close()
            self._probe = None
