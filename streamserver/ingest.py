"""Turn aiortc's receive path into a forwarding path: encoded frames out, no decoder.

aiortc has no public API for receiving encoded media: each RTCRtpReceiver runs the
module-level ``decoder_worker`` in a thread and feeds decoded frames to its track. We replace
that function (looked up at thread start, so a module attribute swap suffices) with one that
wraps each reassembled JitterFrame in an EncodedFrame. These are private internals of
aiortc 1.16.0, pinned in pyproject and covered by tests/streamserver/test_ingest.py.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import aiortc.rtcrtpreceiver as rtcrtpreceiver
import aiortc.rtcrtpsender as rtcrtpsender

from .frames import EncodedFrame, MediaKind

logger = logging.getLogger(__name__)

_ORIGINAL_DECODER_WORKER = rtcrtpreceiver.decoder_worker
_ORIGINAL_SEND_KEYFRAME = rtcrtpsender.RTCRtpSender._send_keyframe
_CODEC_NAMES = {"h264": "H264", "vp8": "VP8", "opus": "opus"}

H264_NAL_IDR = 5


def h264_has_idr(data: bytes) -> bool:
    """True when Annex-B ``data`` holds an IDR slice (NAL type 5)."""
    i = 0
    n = len(data)
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= n:
            return False
        if data[i + 3] & 0x1F == H264_NAL_IDR:
            return True
        i += 3


def is_keyframe(codec: str, data: bytes) -> bool:
    """Keyframe test on the encoded bitstream, without decoding."""
    if codec == "H264":
        return h264_has_idr(data)
    if codec == "VP8":
        return len(data) > 0 and data[0] & 0x01 == 0
    return True


def to_encoded_frame(codec: Any, data: bytes, timestamp: int) -> EncodedFrame | None:
    """Build an EncodedFrame from aiortc codec parameters and a reassembled frame."""
    mime = str(codec.mimeType)
    kind_name, _, subtype = mime.partition("/")
    name = _CODEC_NAMES.get(subtype.lower())
    if name is None or kind_name not in ("audio", "video"):
        return None
    kind: MediaKind = "video" if kind_name == "video" else "audio"
    return EncodedFrame(
        kind=kind,
        codec=name,
        data=bytes(data),
        pts=int(timestamp),
        clock_rate=int(codec.clockRate),
        keyframe=is_keyframe(name, data),
        arrival=time.time(),
    )


def passthrough_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    """Replacement for aiortc's decoder_worker: forwards encoded frames to the track queue."""
    del decode_error  # nothing is decoded, so nothing can fail to decode
    while True:
        task = input_q.get()
        if task is None:
            loop.call_soon_threadsafe(output_q.put_nowait, None)
            break
        codec, jitter_frame = task
        frame = to_encoded_frame(codec, jitter_frame.data, jitter_frame.timestamp)
        if frame is None:
            logger.warning("ingest: dropping frame of unsupported codec %s", codec.mimeType)
            continue
        try:
            loop.call_soon_threadsafe(output_q.put_nowait, frame)
        except RuntimeError:  # loop closed while the receiver was shutting down
            break


def _send_keyframe(self: rtcrtpsender.RTCRtpSender) -> None:
    """Viewer sent PLI/FIR: keep aiortc's behaviour and ask the track's publisher too."""
    _ORIGINAL_SEND_KEYFRAME(self)
    track = self.track
    request = getattr(track, "request_keyframe", None)
    if callable(request):
        request()


def install() -> None:
    """Patch aiortc so that every RemoteStreamTrack.recv() returns EncodedFrame (idempotent)."""
    rtcrtpreceiver.decoder_worker = passthrough_worker
    rtcrtpsender.RTCRtpSender._send_keyframe = _send_keyframe  # type: ignore[method-assign]


def installed() -> bool:
    return rtcrtpreceiver.decoder_worker is passthrough_worker


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
