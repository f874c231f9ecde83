"""Encoded media frames as they travel from the caller to viewers and the recorder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MediaKind = Literal["audio", "video"]


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
