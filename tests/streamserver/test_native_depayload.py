"""The C depayloaders against aiortc's: the same bytes, or the same ValueError, every time."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import aiortc.rtcrtpreceiver as rtcrtpreceiver
import pytest
from aiortc.codecs.h264 import h264_depayload
from aiortc.codecs.vpx import vp8_depayload
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from bench.synthetic import Clip
from streamserver import depayload, native, patches
from streamserver.frames import EncodedFrame
from streamserver.native import _native
from streamserver.packetize import payloads


def outcome(function: Callable[[bytes], bytes], data: bytes) -> bytes | str:
    try:
        return function(data)
    except ValueError as exc:
        return f"ValueError: {exc}"


def clip_payloads(clip: Clip) -> list[bytes]:
    """The RTP payloads aiortc's packetizers make of the clip (both picture ID lengths)."""
    out = []
    for seq, packet in enumerate(clip.video[:40], start=120):  # VP8 IDs past 127: long form
        frame = EncodedFrame("video", clip.codec, packet.data, packet.pts, 90000, False, 0, seq=seq)
        out += payloads(frame)
    return out


H264_CASES = [
    b"",
    b"\x65",  # too short
    b"\x00\x01",  # type 0
    b"\x19\x00",  # STAP-B: unsupported
    b"\x1f\xff",  # type 31
    b"\x18\x00",  # STAP-A, length field cut
    b"\x18\x00\x05\x67\x42",  # STAP-A, data cut
    b"\x18\x00\x00",  # STAP-A with an empty unit
    b"\x18\x00\x01\x09\x00\x02\x67\x42",  # two units
    b"\x7c\x85",  # FU-A first fragment with no data
    b"\x7c\x05\xaa",  # FU-A middle fragment
    b"\x7c\x45\xbb\xcc",  # FU-A last fragment
]
VP8_CASES = [
    b"",
    b"\x10",
    b"\x90",  # extended, bits cut
    b"\x90\x80",  # PictureID cut
    b"\x90\x80\x81",  # long PictureID cut
    b"\x90\x80\x81\x02\xff",
    b"\x90\x80\x05\xff",
    b"\x90\x40",  # TL0PICIDX cut
    b"\x90\x20",  # T/K cut
    b"\x90\x10\x05\xee",
    b"\x90\xf0\x81\x02\x07\x08\xee",
]


@pytest.mark.parametrize(
    ("name", "c", "reference", "cases"),
    [
        ("H264", _native.depayload_h264, h264_depayload, H264_CASES),
        ("VP8", _native.depayload_vp8, vp8_depayload, VP8_CASES),
    ],
)
def test_identical_to_aiortc(
    name: str,
    c: Callable[[bytes], bytes],
    reference: Callable[[bytes], bytes],
    cases: list[bytes],
    h264_clip: Clip,
    vp8_clip: Clip,
) -> None:
    rng = random.Random(17)
    clip = h264_clip if name == "H264" else vp8_clip
    real = clip_payloads(clip)
    fuzz = [rng.randbytes(rng.randrange(0, 40)) for _ in range(3000)]
    cut = [p[: rng.randrange(0, len(p) + 1)] for p in real]  # truncated real payloads
    checked = 0
    for data in cases + real + fuzz + cut:
        assert outcome(c, data) == outcome(reference, data), data[:16]
        checked += isinstance(outcome(reference, data), bytes)
    assert checked > len(real)  # most of them depayload, not only errors


def test_the_receiver_uses_c_only_when_the_extension_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patches.install()
    assert rtcrtpreceiver.depayload is depayload.depayload  # type: ignore[attr-defined]
    h264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, payloadType=111)
    calls: list[Any] = []

    class Spy:
        @staticmethod
        def depayload_h264(data: bytes) -> bytes:
            calls.append(data)
            return _native.depayload_h264(data)

    monkeypatch.setattr(native, "NATIVE", Spy)
    assert depayload.depayload(h264, b"\x65\x88") == b"\x00\x00\x00\x01\x65\x88"
    assert depayload.depayload(opus, b"\xfc\x01") == b"\xfc\x01"
    assert calls == [b"\x65\x88"]
    monkeypatch.setattr(native, "NATIVE", None)
    assert depayload.depayload(h264, b"\x65\x88") == b"\x00\x00\x00\x01\x65\x88"
    with pytest.raises(ValueError, match="too short"):
        depayload.depayload(h264, b"\x65")
    assert calls == [b"\x65\x88"]  # the Python path never reached C
