"""Packetize each relayed frame once, for every viewer: the RTP payloads are shared.

aiortc's sender packs pre-encoded data itself, once per viewer: it copies the frame into an
av.Packet, splits it into NAL units or VP8 partitions and builds the payloads, all in Python.
The payloads depend only on the frame, so the relay builds them once (with aiortc's own
packetizers) and every viewer's sender takes them as they are through a ForwardingEncoder.
VP8 picture IDs come from the relay's frame count, so all viewers see the same, increasing IDs;
a viewer that skipped frames sees a gap in them, which tells its decoder that frames are missing
(it asks for a keyframe) where per-viewer consecutive IDs would have hidden the loss.
These are private internals of aiortc 1.16.0, covered by tests/streamserver/test_packetize.py;
streamserver.patches.install() makes aiortc's senders use forwarding_encoder.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from aiortc.codecs import get_encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder

from .frames import EncodedFrame

VP8_PICTURE_IDS = 1 << 15


@dataclass(frozen=True, slots=True)
class Packetized:
    """One frame's RTP payloads and RTP time, ready for any number of senders."""

    frame: EncodedFrame
    payloads: list[bytes]

    @property
    def timestamp(self) -> int:
        return self.frame.pts


def payloads(frame: EncodedFrame) -> list[bytes]:
    """The frame's RTP payloads, exactly as aiortc's encoders would pack them."""
    if frame.codec == "H264":
        return H264Encoder._packetize(H264Encoder._split_bitstream(frame.data))
    if frame.codec == "VP8":
        return Vp8Encoder._packetize(frame.data, frame.seq % VP8_PICTURE_IDS)
    return [frame.data]


class PacketizedCache:
    """The last second or so of frames' payloads: viewers read close together, so most reads
    hit; one further behind gets its frames built again, identical (picture IDs from ``seq``)."""

    def __init__(self, size: int = 32) -> None:
        self._recent: deque[Packetized] = deque(maxlen=size)
        self.built = 0

    def get(self, frame: EncodedFrame) -> Packetized:
        for entry in reversed(self._recent):
            if entry.frame is frame:
                return entry
        entry = Packetized(frame, payloads(frame))
        self._recent.append(entry)
        self.built += 1
        return entry


class ForwardingEncoder:
    """Takes a Packetized frame as it is; anything else goes to aiortc's own encoder."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def pack(self, data: Any) -> tuple[list[bytes], int]:
        if isinstance(data, Packetized):
            return data.payloads, data.timestamp
        result: tuple[list[bytes], int] = self._inner.pack(data)
        return result

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        result: tuple[list[bytes], int] = self._inner.encode(frame, force_keyframe)
        return result

    @property
    def target_bitrate(self) -> int:
        """aiortc sets this from the viewer's REMB when the encoder has one."""
        return int(self._inner.target_bitrate)

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self._inner.target_bitrate = bitrate


def forwarding_encoder(codec: Any) -> ForwardingEncoder:
    return ForwardingEncoder(get_encoder(codec))
