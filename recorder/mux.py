"""Blocking Matroska writer for one recording part: muxes encoded frames, never encodes.

Matroska survives a writer crash (frames up to the cut stay decodable), unlike plain MP4.
Every method here blocks on file I/O, so the recorder calls them from its own thread.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
from av.container import OutputContainer
from av.stream import Stream

from streamserver.frames import EncodedFrame
from streamserver.ingest import is_keyframe

from .h264 import h264_dimensions

logger = logging.getLogger(__name__)

OPUS_RATE = 48000
CLUSTER_MS = 500


def vp8_dimensions(data: bytes) -> tuple[int, int]:
    """Width and height from a VP8 keyframe header (RFC 6386 section 9.1)."""
    if not is_keyframe("VP8", data):
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
        self._streams: dict[str, Stream] = {}
        self._origin: dict[str, int] = {}
        self._last_pts: dict[str, int] = {}
        self._rates: dict[str, int] = {}
        self.first_video_pts: int | None = None

    @property
    def duration_s(self) -> float:
        """Media seconds written so far (from the aligned timestamps)."""
        return max((pts / self._rates[k] for k, pts in self._last_pts.items()), default=0.0)

    def video_size(self, frame: EncodedFrame) -> tuple[int, int] | None:
        try:
            return self._video_size(frame)
        except (ValueError, IndexError):
            return None

    @property
    def started(self) -> bool:
        return self._container is not None

    def write(self, frame: EncodedFrame) -> None:
        if self._container is None:
            starts = frame.keyframe if self.expect_video else True
            if not starts or (self.expect_video and frame.kind != "video"):
                self.skipped += 1
                return
            try:
                self._open(frame)
            except ValueError as exc:  # e.g. an IDR without its SPS: wait for the next
                logger.warning("recorder: cannot start %s yet: %s", self.path.name, exc)
                self.skipped += 1
                return
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
        self._rates[frame.kind] = frame.clock_rate
        if frame.kind == "video" and self.first_video_pts is None:
            self.first_video_pts = frame.pts
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
        # Read the size first: an unusable keyframe must not leave an empty file behind.
        size = self._video_size(first) if self.expect_video else (0, 0)
        # Crash tolerance: libavformat keeps a Matroska cluster in memory until it ends, so
        # clusters are cut at least every CLUSTER_MS and every packet is flushed to the OS;
        # a killed server loses at most about one cluster.
        container = av.open(
            str(self.path),
            "w",
            format="matroska",
            options={"cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"},
        )
        try:
            if self.expect_video:
                self.video_codec = first.codec
                self.width, self.height = size
                # No CodecContext: nothing is decoded and no encoder is opened. For H.264
                # the Matroska muxer writes an avcC header (CodecPrivate) from the SPS/PPS
                # of the first packet and stores the packets length-prefixed.
                video = container.add_mux_stream(
                    "h264" if first.codec == "H264" else "vp8", width=size[0], height=size[1]
                )
                video.time_base = Fraction(1, first.clock_rate)
                self._streams["video"] = video
            if self.expect_audio:
                # Opening (never using) the Opus encoder yields the OpusHead header.
                audio = container.add_stream("libopus", rate=OPUS_RATE, layout="stereo")
                audio.time_base = Fraction(1, OPUS_RATE)
                self._streams["audio"] = audio
            container.metadata["title"] = "SceneLink evidential recording"
            # The header is written with the first packet: PyAV runs extract_extradata on
            # it, which gives the muxer the SPS/PPS for the avcC header.
        except Exception:
            container.close()
            raise
        self._container = container
        self.start_arrival = first.arrival

    @staticmethod
    def _video_size(key: EncodedFrame) -> tuple[int, int]:
        if key.codec == "VP8":
            return vp8_dimensions(key.data)
        if key.codec == "H264":
            return h264_dimensions(key.data)
        raise ValueError(f"cannot record video codec {key.codec}")

    def close(self) -> None:
        """Write the trailer (Matroska cues and duration)."""
        if self._container is not None:
            self._container.close()
            self._container = None
