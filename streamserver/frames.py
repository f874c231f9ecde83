"""Encoded media frames as they travel from the caller to viewers and the recorder.

Also what the media plane knows about a frame without decoding it: the codec names it uses
and the keyframe tests on the bitstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .h264 import h264_dimensions

MediaKind = Literal["audio", "video"]

CODEC_NAMES = {"h264": "H264", "vp8": "VP8", "opus": "opus"}
"""Our name for each codec we forward, by its lower-case MIME subtype."""

H264_NAL_IDR = 5
VP8_START = b"\x9d\x01\x2a"  # after the 3-byte frame tag of every keyframe
VP8_KEYFRAME_HEADER = 10  # frame tag, start code, width and height


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded frame, exactly as the phone sent it.

    ``data`` is Annex-B H.264, a raw VP8 frame or one Opus packet; nothing in the
    media plane ever decodes it. ``pts`` counts clock-rate ticks from the first
    frame of the track; ``arrival`` is the server's wall clock when the frame was
    complete, so recordings can carry wall-clock time. ``capture_time`` is the caller's
    own wall clock for this frame (Unix seconds), known once an RTCP sender report has
    paired the track's RTP clock with NTP time; audio and video line up on it. ``seq`` is
    the relay's running count of the track's frames (from 1; 0 before the relay).
    ``after_loss``: packets of it, or just before it, never came, so it holds what arrived
    rather than all the phone sent (streamserver.reassembly.ReceivedFrame).
    """

    kind: MediaKind
    codec: str  # "H264", "VP8" or "opus"
    data: bytes
    pts: int
    clock_rate: int
    keyframe: bool
    arrival: float
    capture_time: float | None = None
    seq: int = 0
    after_loss: bool = False

    def relayed(self, pts: int, capture_time: float | None, seq: int) -> EncodedFrame:
        """This frame as its relay hands it on: on the relay's clock, numbered, placed in the
        caller's time (dataclasses.replace's generic path costs twice this, per frame)."""
        return EncodedFrame(
            self.kind,
            self.codec,
            self.data,
            pts,
            self.clock_rate,
            self.keyframe,
            self.arrival,
            capture_time,
            seq,
            self.after_loss,
        )


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
        # The P bit clear, and the keyframe start code (RFC 6386 section 9.1): the bit alone is
        # also clear in one of two frames whose first packets were lost.
        return len(data) >= VP8_KEYFRAME_HEADER and data[0] & 0x01 == 0 and data[3:6] == VP8_START
    return True


def vp8_dimensions(data: bytes) -> tuple[int, int]:
    """Width and height from a VP8 keyframe header (RFC 6386 section 9.1)."""
    if not is_keyframe("VP8", data):
        raise ValueError("not a VP8 keyframe")
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


def video_dimensions(codec: str, keyframe: bytes) -> tuple[int, int]:
    """Width and height of a VP8 or H.264 keyframe, from its header or SPS (ValueError if
    unreadable or another codec)."""
    if codec == "VP8":
        return vp8_dimensions(keyframe)
    if codec == "H264":
        return h264_dimensions(keyframe)
    raise ValueError(f"no dimensions for video codec {codec}")
