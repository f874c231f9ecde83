"""Shared packetization: the payloads equal aiortc's own, once per frame, through its sender."""

from __future__ import annotations

import fractions
import time
from collections.abc import Callable

import aiortc.rtcrtpsender as rtcrtpsender
import av
import pytest
from aiortc.codecs import get_encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from bench.synthetic import Clip, ClipPacket
from streamserver import packetize, patches
from streamserver.frames import EncodedFrame, MediaKind
from streamserver.packetize import ForwardingEncoder, Packetized, PacketizedCache, payloads
from streamserver.relay import TrackRelay


def as_frame(codec: str, p: ClipPacket, seq: int) -> EncodedFrame:
    kind: MediaKind = "audio" if codec == "opus" else "video"
    rate = 48000 if codec == "opus" else 90000
    return EncodedFrame(kind, codec, p.data, p.pts, rate, p.keyframe, time.time(), seq=seq)


def as_packet(frame: EncodedFrame) -> av.Packet[av.stream.Stream]:
    packet = av.Packet(frame.data)
    packet.pts = packet.dts = frame.pts
    packet.time_base = fractions.Fraction(1, frame.clock_rate)
    return packet


@pytest.mark.parametrize("codec", ["H264", "VP8"])
def test_payloads_equal_what_aiortc_packs(clips: dict[str, Clip], codec: str) -> None:
    encoders = {"H264": H264Encoder(), "VP8": Vp8Encoder(), "opus": OpusEncoder()}
    clip = clips[codec]
    for name, packets in ((codec, clip.video[:40]), ("opus", clip.audio[:40])):
        encoder = encoders[name]
        for seq, p in enumerate(packets, start=1):
            frame = as_frame(name, p, seq)
            if isinstance(encoder, Vp8Encoder):
                encoder.picture_id = seq % packetize.VP8_PICTURE_IDS  # relay-wide picture IDs
            assert (payloads(frame), frame.pts) == encoder.pack(as_packet(frame))
    assert any(len(payloads(as_frame(codec, p, 1))) > 1 for p in clip.video)  # fragmented too


def test_cache_builds_each_frame_once_and_laggards_still_get_theirs(
    clips: dict[str, Clip],
) -> None:
    cache = PacketizedCache(size=2)
    frames = [as_frame("VP8", p, i) for i, p in enumerate(clips["VP8"].video[:3], start=1)]
    first = cache.get(frames[0])
    assert cache.get(frames[0]) is first and cache.built == 1
    cache.get(frames[1])
    cache.get(frames[2])
    late = cache.get(frames[0])  # fell out of the cache: rebuilt, with the same picture ID
    assert late is not first and late.payloads == first.payloads and cache.built == 4


def senders_get_encoder() -> Callable[[RTCRtpCodecParameters], object]:
    """What aiortc's sender calls to make its encoder (patches.install() rebinds it)."""
    factory: Callable[[RTCRtpCodecParameters], object] = vars(rtcrtpsender)["get_encoder"]
    return factory


def test_forwarding_encoder_passes_packetized_and_delegates_the_rest(
    clips: dict[str, Clip],
) -> None:
    patches.install()
    assert senders_get_encoder() is packetize.forwarding_encoder
    codec = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
    encoder = senders_get_encoder()(codec)
    assert isinstance(encoder, ForwardingEncoder)
    frame = as_frame("H264", clips["H264"].video[0], 1)
    shared = Packetized(frame, payloads(frame))
    assert encoder.pack(shared) == (shared.payloads, frame.pts)
    assert encoder.pack(shared)[0] is shared.payloads  # no copy per viewer
    assert encoder.pack(as_packet(frame)) == get_encoder(codec).pack(as_packet(frame))
    encoder.target_bitrate = 500_000  # aiortc sets it from REMB
    assert encoder.target_bitrate == 500_000
    opus = senders_get_encoder()(
        RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=96)
    )
    assert not hasattr(opus, "target_bitrate")  # aiortc skips REMB for it, as before


def test_a_viewer_track_makes_senders_take_packetized_frames(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rtcrtpsender, "get_encoder", get_encoder)
    TrackRelay("video").viewer_track("H264")
    assert senders_get_encoder() is packetize.forwarding_encoder
