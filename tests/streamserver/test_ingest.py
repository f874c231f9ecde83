"""The ingest patch relies on aiortc 1.16.0 internals: these tests fail if they move."""

from __future__ import annotations

import asyncio
import inspect

import aiortc.rtcrtpreceiver as rtcrtpreceiver
import aiortc.rtcrtpsender as rtcrtpsender
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from streamserver import ingest
from streamserver.frames import EncodedFrame
from streamserver.synthetic import Clip, SyntheticCaller


def test_patched_internals_still_exist() -> None:
    assert list(inspect.signature(ingest._ORIGINAL_DECODER_WORKER).parameters) == [
        "loop",
        "input_q",
        "output_q",
        "decode_error",
    ]
    assert list(inspect.signature(ingest.passthrough_worker).parameters) == [
        "loop",
        "input_q",
        "output_q",
        "decode_error",
    ]
    # The receiver thread must look the worker up as a module global at start.
    source = inspect.getsource(rtcrtpreceiver.RTCRtpReceiver.receive)
    assert "target=decoder_worker" in source
    assert hasattr(rtcrtpreceiver.RTCRtpReceiver, "_send_rtcp_pli")
    assert hasattr(rtcrtpreceiver.RTCRtpReceiver, "getSynchronizationSources")
    assert "self._send_keyframe()" in inspect.getsource(rtcrtpsender.RTCRtpSender)
    assert hasattr(rtcrtpreceiver.RemoteStreamTrack(kind="video"), "_queue")


def test_install_is_idempotent() -> None:
    ingest.install()
    ingest.install()
    assert rtcrtpreceiver.decoder_worker is ingest.passthrough_worker
    assert rtcrtpsender.RTCRtpSender._send_keyframe is ingest._send_keyframe


def test_keyframe_detection() -> None:
    idr = b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x00\x01\x68\xce" + b"\x00\x00\x01\x65\x88"
    delta = b"\x00\x00\x00\x01\x41\x9a\x00"
    assert ingest.is_keyframe("H264", idr)
    assert not ingest.is_keyframe("H264", delta)
    assert ingest.is_keyframe("VP8", b"\x10\x02\x00\x9d\x01\x2a")
    assert not ingest.is_keyframe("VP8", b"\x31\x02\x00")
    assert ingest.is_keyframe("opus", b"\xfc")


def nal_units(codec: str, data: bytes) -> list[bytes]:
    if codec != "H264":
        return [data]
    return [n.strip(b"\x00") for n in data.split(b"\x00\x00\x01") if n.strip(b"\x00")]


@pytest.mark.parametrize("codec", ["H264", "VP8"])
async def test_real_loopback_yields_encoded_frames(
    codec: str, h264_clip: Clip, vp8_clip: Clip
) -> None:
    ingest.install()
    clip = h264_clip if codec == "H264" else vp8_clip
    caller = SyntheticCaller(clip)
    server = RTCPeerConnection()
    tracks: dict[str, MediaStreamTrack] = {}
    receivers: dict[str, rtcrtpreceiver.RTCRtpReceiver] = {}

    @server.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        tracks[track.kind] = track

    try:
        await server.setRemoteDescription(await caller.offer())
        await server.setLocalDescription(await server.createAnswer())
        await caller.accept(server.localDescription)
        for t in server.getTransceivers():
            receivers[t.kind] = t.receiver
        video = [await asyncio.wait_for(tracks["video"].recv(), 5) for _ in range(12)]
        audio = [await asyncio.wait_for(tracks["audio"].recv(), 5) for _ in range(5)]
        assert all(isinstance(f, EncodedFrame) for f in video + audio)
        assert {f.codec for f in video} == {codec}
        assert {f.codec for f in audio} == {"opus"}
        assert video[0].keyframe and video[0].pts == 0 and video[0].clock_rate == 90000
        assert [f.pts for f in video] == [i * 3000 for i in range(12)]
        assert audio[0].clock_rate == 48000
        # The bitstream arrives as sent (H.264: same NAL units; start codes become 4-byte).
        assert nal_units(codec, video[1].data) == nal_units(codec, clip.video[1].data)
        # PLI to the caller goes through the receiver; rate-limited.
        requester = ingest.KeyframeRequester(receivers["video"], min_interval=10)
        assert requester() is True
        assert requester() is False
    finally:
        await caller.close()
        await server.close()
