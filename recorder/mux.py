"""Blocking Matroska writer for one recording part: muxes encoded frames, never encodes.

Matroska survives a writer crash (frames up to the cut stay decodable), unlike plain MP4.
Every method here blocks on file I/O, so the recorder calls them from its own thread.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
from av.container import OutputContainer
from av.stream import Stream

from streamserver.frames import EncodedFrame, vp8_dimensions
from streamserver.h264 import h264_dimensions

logger = logging.getLogger(__name__)

OPUS_RATE = 48000
CLUSTER_MS = 500


PartFactory = Callable[[], tuple[Path, BinaryIO]]


@dataclass(frozen=True, slots=True)
class FrameAfterLoss:
    """A frame written that came after loss (EncodedFrame.after_loss): its kind, its index in
    that kind's track of the part (from 0), and its time there (seconds, to the millisecond
    as Matroska keeps it)."""

    kind: str
    index: int
    time_s: float


# Audio that arrives before the first video keyframe is kept for the part, up to this much.
EARLY_AUDIO_S = 5.0


class PartWriter:
    """Writes one ``media-NNN.mkv``; creates the file at the first video keyframe.

    ``create`` hands out a new, exclusively created file (``parts.PartNames``): a part is
    never written over another. Opus frames that arrive before the first keyframe (the phone
    starts audio a little sooner) are held and written at their own times once it comes.
    """

    def __init__(self, create: PartFactory, expect_video: bool, expect_audio: bool) -> None:
        self._create = create
        self.path: Path | None = None
        self._file: BinaryIO | None = None
        self.expect_video = expect_video
        self.expect_audio = expect_audio
        # Per kind: frames muxed, and frames not written (no keyframe to start on yet).
        self.written: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
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
        self._early_audio: list[EncodedFrame] = []
        self._finished = False
        self.first_video_pts: int | None = None
        self.after_loss: list[FrameAfterLoss] = []  # written since take_after_loss()

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
    def frames_written(self) -> int:
        return sum(self.written.values())

    @property
    def cut_short(self) -> bool:
        """A part file was created and not closed properly (yet): the trailer is missing."""
        return self.path is not None and not self._finished

    @property
    def started(self) -> bool:
        return self._container is not None

    def write(self, frame: EncodedFrame) -> None:
        if self._container is None:
            if self.expect_video and frame.kind == "audio" and self.expect_audio:
                self._hold_early_audio(frame)
                return
            starts = frame.keyframe if self.expect_video else True
            if not starts or (self.expect_video and frame.kind != "video"):
                self.skipped[frame.kind] += 1
                return
            try:
                self._open(frame)
            except ValueError as exc:  # e.g. an IDR without its SPS: wait for the next
                logger.warning("recorder: cannot start a part yet: %s", exc)
                self.skipped[frame.kind] += 1
                return
            self._mux(frame)  # first: the header takes the H.264 parameter sets from it
            early, self._early_audio = self._early_audio, []
            for held in early:
                self._mux(held)
            return
        self._mux(frame)

    def _hold_early_audio(self, frame: EncodedFrame) -> None:
        self._early_audio.append(frame)
        while self._early_audio[-1].arrival - self._early_audio[0].arrival > EARLY_AUDIO_S:
            self._early_audio.pop(0)
            self.skipped["audio"] += 1

    def _mux(self, frame: EncodedFrame) -> None:
        stream = self._streams.get(frame.kind)
        if stream is None:
            self.skipped[frame.kind] += 1
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
        self.written[frame.kind] += 1
        self.last_arrival = frame.arrival
        if frame.after_loss:
            index = self.written[frame.kind] - 1
            # In milliseconds as Matroska keeps them (rounded half up, as libavformat does).
            time_s = (pts * 1000 + frame.clock_rate // 2) // frame.clock_rate / 1000
            self.after_loss.append(FrameAfterLoss(frame.kind, index, time_s))

    def take_after_loss(self) -> list[FrameAfterLoss]:
        """The frames after loss written since the last call."""
        taken, self.after_loss = self.after_loss, []
        return taken

    def _open(self, first: EncodedFrame) -> None:
        # Read the size first: an unusable keyframe must not leave an empty file behind.
        size = self._video_size(first) if self.expect_video else (0, 0)
        path, file = self._create()
        # Crash tolerance: libavformat keeps a Matroska cluster in memory until it ends, so
        # clusters are cut at least every CLUSTER_MS and every packet is flushed to the OS;
        # a killed server loses at most about one cluster.
        try:
            container = av.open(
                file,
                "w",
                format="matroska",
                options={"cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"},
            )
        except Exception:
            file.close()
            raise
        self.path, self._file = path, file
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
        # Audio held from before this keyframe starts the part's clock where it arrived.
        self.start_arrival = min([first.arrival] + [a.arrival for a in self._early_audio])

    @staticmethod
    def _video_size(key: EncodedFrame) -> tuple[int, int]:
        if key.codec == "VP8":
            return vp8_dimensions(key.data)
        if key.codec == "H264":
            return h264_dimensions(key.data)
        raise ValueError(f"cannot record video codec {key.codec}")

    def close(self) -> None:
        """Write the trailer (Matroska cues and duration), fsync and close the file.

        The file is closed even when the trailer cannot be written (a full disk): what
        reached it stays as it is, for the recorder to keep as an incomplete part.
        """
        container, self._container = self._container, None
        file, self._file = self._file, None
        self.skipped["audio"] += len(self._early_audio)  # no keyframe ever came for them
        self._early_audio = []
        try:
            if container is not None:
                container.close()
                self._finished = True
        finally:
            if file is not None:
                try:
                    os.fsync(file.fileno())  # what reached the file, even without a trailer
                finally:
                    file.close()
