"""Turn aiortc's receive path into a forwarding path: encoded frames out, no decoder.

aiortc has no public API for receiving encoded media: each RTCRtpReceiver reassembles frames
in a JitterBuffer, hands them to a decoder thread through a queue, and the thread feeds decoded
frames to its track. We swap the buffer for one that releases frames without waiting for the
next one (reassembly.py), and the queue for a FrameSink that wraps each frame in an
EncodedFrame right there on the event loop, so the decoder thread (still started by aiortc)
has nothing to do and exits: no thread hop per frame. The relay takes the frames from the
sink in the same callback (push_to): no queue and no task switch either. These are private
internals of aiortc 1.16.0, pinned in pyproject and covered by tests/streamserver/test_ingest.py;
the pieces here are put in place by streamserver.patches.install() (patches/receiver.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiortc.rtcrtpreceiver as rtcrtpreceiver
import aiortc.rtcrtpsender as rtcrtpsender
from aiortc.rtp import RtcpSrPacket

from . import nativeingest
from .fastclock import NTP_UNIX_OFFSET
from .frames import CODEC_NAMES, EncodedFrame, MediaKind, is_keyframe
from .reassembly import CompletingJitterBuffer, arrival_of, frame_parts

logger = logging.getLogger(__name__)

_SR_LISTENER = "_scenelink_sr_listener"
_MAPPER = "_RTCRtpReceiver__timestamp_mapper"
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_CODECS = "_RTCRtpReceiver__codecs"


@functools.cache
def forwarded_codec(mime: str) -> tuple[MediaKind, str] | None:
    """The kind and our name of a codec we forward, by its MIME type; None for any other."""
    kind_name, _, subtype = mime.partition("/")
    name = CODEC_NAMES.get(subtype.lower())
    if name is None or kind_name not in ("audio", "video"):
        return None
    return ("video" if kind_name == "video" else "audio"), name


def to_encoded_frame(
    codec: Any,
    data: bytes,
    timestamp: int,
    after_loss: bool = False,
    arrival: float | None = None,
) -> EncodedFrame | None:
    """Build an EncodedFrame from aiortc codec parameters and a reassembled frame, complete
    at ``arrival`` (Unix seconds; now if not known)."""
    forwarded = forwarded_codec(str(codec.mimeType))
    if forwarded is None:
        return None
    kind, name = forwarded
    return EncodedFrame(
        kind,
        name,
        bytes(data),
        int(timestamp),
        int(codec.clockRate),
        is_keyframe(name, data),
        time.time() if arrival is None else arrival,
        after_loss=after_loss,
    )


FrameConsumer = Callable[[EncodedFrame | None], None]
_CONSUMER = "_scenelink_consumer"  # on a receiver's track: where its frames go instead
_RECEIVER = "_scenelink_receiver"  # on a receiver's track: the receiver that feeds it
_HOLD = "_scenelink_hold"  # on a receiver's track: whether its frames may be held


class FrameSink:
    """Takes the receiver's place of its decoder queue: frames go straight to the track.

    aiortc calls ``put((codec, frame))`` on the event loop for each reassembled frame and
    ``put(None)`` when the receiver stops; both land on the track's queue at once, or go to
    the track's consumer (``push_to``). At the stop, frames the receiver's buffer still holds
    behind a gap go first: no packet will come to release them, and they are evidence.
    """

    def __init__(
        self,
        track: rtcrtpreceiver.RemoteStreamTrack,
        receiver: rtcrtpreceiver.RTCRtpReceiver | None = None,
    ) -> None:
        self._track = track
        self._receiver = receiver

    def put(self, item: tuple[Any, Any] | None) -> None:
        if item is None:
            if self._receiver is not None:
                self._flush(self._receiver)
                self._receiver = None
            self._out(None)
            return
        codec, jitter_frame = item
        arrival = arrival_of(jitter_frame)
        for data, timestamp, after_loss in frame_parts(jitter_frame):
            frame = to_encoded_frame(codec, data, timestamp, after_loss, arrival)
            if frame is None:
                logger.warning("ingest: dropping frame of unsupported codec %s", codec.mimeType)
                return
            self._out(frame)

    def _out(self, frame: EncodedFrame | None) -> None:
        consumer: FrameConsumer | None = getattr(self._track, _CONSUMER, None)
        if consumer is None:
            self._track._queue.put_nowait(frame)
        else:
            consumer(frame)

    def _flush(self, receiver: rtcrtpreceiver.RTCRtpReceiver) -> None:
        """What aiortc's buffer holds, then what the receiver's C assemblers hold."""
        buffer = getattr(receiver, _JITTER_BUFFER)
        if isinstance(buffer, CompletingJitterBuffer):
            codecs = getattr(receiver, _CODECS)
            mapper = getattr(receiver, _MAPPER)
            for payload_type, frame in buffer.flush():
                codec = codecs.get(payload_type)
                if codec is not None:
                    frame.timestamp = mapper.map(frame.timestamp)
                    self.put((codec, frame))
        for codec, frame in nativeingest.flush(receiver):
            self.put((codec, frame))


def give_frame_sink(receiver: rtcrtpreceiver.RTCRtpReceiver) -> None:
    """Put a FrameSink in place of the receiver's decoder queue, before its receive() starts."""
    track = receiver._track
    if track is not None and not isinstance(getattr(receiver, _DECODER_QUEUE), FrameSink):
        setattr(receiver, _DECODER_QUEUE, FrameSink(track, receiver))
        setattr(track, _RECEIVER, receiver)
        if getattr(track, _HOLD, False):  # its relay asked before the receiver started
            nativeingest.hold(receiver, True)


def hold_frames(track: rtcrtpreceiver.RemoteStreamTrack, on: bool) -> None:
    """Nobody needs the track's frames the instant they complete (on): its receiver's C
    assemblers may keep them for ``drain_frames``; off: each goes at once again, after those
    kept. A track on aiortc's own path (no C assembler) gives each at once either way."""
    setattr(track, _HOLD, on)
    receiver = getattr(track, _RECEIVER, None)
    if receiver is not None:
        nativeingest.hold(receiver, on)


def drain_frames(track: rtcrtpreceiver.RemoteStreamTrack) -> None:
    """The frames the track's receiver kept, to the track's consumer now, in order."""
    receiver = getattr(track, _RECEIVER, None)
    if receiver is not None:
        nativeingest.drain(receiver)


def push_to(track: rtcrtpreceiver.RemoteStreamTrack, consumer: FrameConsumer | None) -> None:
    """Have a receiver's track give each frame to ``consumer`` as its FrameSink makes it, in
    the packet's own callback: no queue, no task switch per frame (frames its queue already
    holds go first, now). None puts the track's queue back in the way."""
    if consumer is None:
        track.__dict__.pop(_CONSUMER, None)
        return
    queued = track._queue
    while not queued.empty():
        consumer(queued.get_nowait())
    setattr(track, _CONSUMER, consumer)


def ask_publisher_for_keyframe(sender: rtcrtpsender.RTCRtpSender) -> None:
    """A viewer sent PLI/FIR to ``sender``: ask the publisher of its track too, if it can."""
    request = getattr(sender.track, "request_keyframe", None)
    if callable(request):
        request()


@dataclass(frozen=True, slots=True)
class SenderReport:
    """One RTCP sender report from the caller: its (NTP, RTP) pair and when it reached us.

    ``pts`` is ``rtp`` on the same scale as the track's EncodedFrame.pts (aiortc's receiver
    counts from the track's first RTP timestamp), or None before the first frame arrived.
    With it, any frame's capture wall clock is ``ntp_time + (frame.pts - pts) / clock_rate``.
    """

    ssrc: int
    ntp: int  # 64-bit NTP timestamp, as sent
    rtp: int  # RTP timestamp, as sent
    pts: int | None
    arrival: float  # our time.time() on receipt
    packets: int
    octets: int

    @property
    def ntp_time(self) -> float:
        """The sender's wall clock at ``rtp``, as Unix seconds."""
        return (self.ntp >> 32) - NTP_UNIX_OFFSET + (self.ntp & 0xFFFFFFFF) / 2**32


SenderReportListener = Callable[[SenderReport], None]


def _rtp_to_pts(receiver: rtcrtpreceiver.RTCRtpReceiver, rtp: int) -> int | None:
    """Map an RTP timestamp the way aiortc's TimestampMapper maps the track's frames."""
    mapper = getattr(receiver, _MAPPER, None)
    origin = getattr(mapper, "_origin", None)
    if origin is None:
        return None
    pts = (rtp - origin) % (1 << 32)
    if pts >= 1 << 31:  # a report for a timestamp just before the first frame
        pts -= 1 << 32
    return int(pts)


def deliver_sender_report(receiver: rtcrtpreceiver.RTCRtpReceiver, packet: Any) -> None:
    """Give an RTCP sender report the receiver got to its listener (on_sender_report), if any."""
    listener: SenderReportListener | None = getattr(receiver, _SR_LISTENER, None)
    if listener is None or not isinstance(packet, RtcpSrPacket):
        return
    info = packet.sender_info
    report = SenderReport(
        ssrc=packet.ssrc,
        ntp=info.ntp_timestamp,
        rtp=info.rtp_timestamp,
        pts=_rtp_to_pts(receiver, info.rtp_timestamp),
        arrival=time.time(),
        packets=info.packet_count,
        octets=info.octet_count,
    )
    try:
        listener(report)
    except Exception:
        logger.exception("ingest: sender report listener failed")


def on_sender_report(
    receiver: rtcrtpreceiver.RTCRtpReceiver, listener: SenderReportListener | None
) -> None:
    """Call ``listener`` with every RTCP sender report this receiver gets.

    Needs streamserver.patches.install().
    """
    setattr(receiver, _SR_LISTENER, listener)


class KeyframeRequester:
    """Sends RTCP PLI to the caller through a receiver, at most once per ``min_interval``."""

    def __init__(self, receiver: rtcrtpreceiver.RTCRtpReceiver, min_interval: float = 0.5) -> None:
        self._receiver = receiver
        self._min_interval = min_interval
        self._last = 0.0
        self.sent = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self) -> bool:
        """Ask for a keyframe; returns False when rate-limited or no SSRC is known yet."""
        now = time.monotonic()
        if now - self._last < self._min_interval:
            return False
        sources = self._receiver.getSynchronizationSources()
        if not sources:
            return False
        self._last = now
        self.sent += 1
        for source in sources:
            task = asyncio.ensure_future(self._receiver._send_rtcp_pli(source.source))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True


KeyframeRequest = Callable[[], object]
