"""The ingest patch relies on aiortc 1.16.0 internals: these tests fail if they move."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

import aiortc.rtcrtpreceiver as rtcrtpreceiver
import aiortc.rtcrtpsender as rtcrtpsender
import pytest
from aiortc import RTCRtpCodecParameters
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

from bench.synthetic import Clip
from streamserver import ingest, patches
from streamserver.fastclock import NTP_UNIX_OFFSET
from streamserver.frames import EncodedFrame, is_keyframe
from streamserver.patches import receiver as patched
from streamserver.reassembly import CompletingJitterBuffer, FrameBatch, ReceivedFrame


def test_patched_internals_still_exist() -> None:
    assert list(inspect.signature(patched.ORIGINAL_DECODER_WORKER).parameters) == [
        "loop",
        "input_q",
        "output_q",
        "decode_error",
    ]
    assert list(inspect.signature(patched.idle_worker).parameters) == [
        "loop",
        "input_q",
        "output_q",
        "decode_error",
    ]
    # The receiver builds its buffer and queue in __init__ from module globals, starts the
    # worker (a module global) in receive() with the track's queue, and on the event loop
    # puts each mapped frame, then None, into the queue for as long as the thread object
    # exists (a finished thread still counts).
    init = inspect.getsource(rtcrtpreceiver.RTCRtpReceiver.__init__)
    assert "self.__jitter_buffer = JitterBuffer(capacity=16, prefetch=4)" in init
    assert "self.__jitter_buffer = JitterBuffer(capacity=512, is_video=True)" in init
    assert "self.__decoder_queue: queue.Queue = queue.Queue()" in init
    assert "self.__codecs: dict[int, RTCRtpCodecParameters] = {}" in init
    assert "self.__timestamp_mapper = TimestampMapper()" in init
    source = inspect.getsource(patched.ORIGINAL_RECEIVE)
    assert "target=decoder_worker" in source
    assert "self._track._queue," in source
    receive_rtp = inspect.getsource(rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    assert "pli_flag, encoded_frame = self.__jitter_buffer.add(packet)" in receive_rtp
    assert "if encoded_frame is not None and self.__decoder_thread:" in receive_rtp
    assert "self.__decoder_queue.put((codec, encoded_frame))" in receive_rtp
    stop = inspect.getsource(vars(rtcrtpreceiver.RTCRtpReceiver)["_RTCRtpReceiver__stop_decoder"])
    assert "self.__decoder_queue.put(None)" in stop
    assert "self.__decoder_thread.join()" in stop
    assert hasattr(rtcrtpreceiver.RTCRtpReceiver, "_send_rtcp_pli")
    assert hasattr(rtcrtpreceiver.RTCRtpReceiver, "getSynchronizationSources")
    assert "self._send_keyframe()" in inspect.getsource(rtcrtpsender.RTCRtpSender)
    assert hasattr(rtcrtpreceiver.RemoteStreamTrack(kind="video"), "_queue")
    # Sender reports: the handler we wrap, and the mapper that gives frames their pts.
    assert list(inspect.signature(patched.ORIGINAL_HANDLE_RTCP).parameters) == ["self", "packet"]
    assert "isinstance(packet, RtcpSrPacket)" in inspect.getsource(patched.ORIGINAL_HANDLE_RTCP)
    assert "self.__timestamp_mapper.map(" in receive_rtp
    assert hasattr(rtcrtpreceiver.TimestampMapper(), "_origin")


def test_install_is_idempotent() -> None:
    patches.install()
    patches.install()
    assert vars(rtcrtpreceiver)["JitterBuffer"] is CompletingJitterBuffer  # not exported
    assert rtcrtpreceiver.decoder_worker is patched.idle_worker
    assert rtcrtpreceiver.RTCRtpReceiver.receive is patched.receive
    assert rtcrtpsender.RTCRtpSender._send_keyframe is patched.send_keyframe
    assert rtcrtpreceiver.RTCRtpReceiver._handle_rtcp_packet is patched.handle_rtcp_packet


def test_a_frame_arrives_when_its_last_packet_came_where_that_is_known() -> None:
    track = rtcrtpreceiver.RemoteStreamTrack(kind="audio")
    sink = ingest.FrameSink(track)
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, payloadType=111)
    sink.put((opus, ReceivedFrame(b"a", 0, arrival=1_700_000_000.25)))  # held, taken later
    sink.put((opus, FrameBatch([ReceivedFrame(b"b", 960), ReceivedFrame(b"c", 1920)], 12.5)))
    before = time.time()
    sink.put((opus, ReceivedFrame(b"d", 2880)))  # not known: now
    frames = [track._queue.get_nowait() for _ in range(4)]
    arrivals = [f.arrival for f in frames if f is not None]
    assert arrivals[:3] == [1_700_000_000.25, 12.5, 12.5]
    assert before <= arrivals[3] <= time.time()


async def test_frame_sink_delivers_batches_in_order_then_the_end() -> None:
    track = rtcrtpreceiver.RemoteStreamTrack(kind="video")
    output = track._queue
    sink = ingest.FrameSink(track)
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    key = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\x68\x01"  # a VP8 keyframe's header
    batch = FrameBatch([ReceivedFrame(key, 0xFFFFF448), ReceivedFrame(b"\x11d", 0, True)])
    batch.timestamp = 9000  # what the receiver's TimestampMapper made of the oldest
    sink.put((codec, batch))
    sink.put((codec, JitterFrame(b"\x11e", 15000)))
    sink.put(None)
    frames = [output.get_nowait() for _ in range(4)]
    assert frames[3] is None
    got = [(f.data, f.pts, f.keyframe, f.codec, f.after_loss) for f in frames[:3] if f]
    assert got == [
        (key, 9000, True, "VP8", False),
        (b"\x11d", 12000, False, "VP8", True),  # the loss goes on with the frame
        (b"\x11e", 15000, False, "VP8", False),
    ]


class StoppingReceiver:
    """What FrameSink reads from an RTCRtpReceiver when it stops (names as aiortc mangles them)."""

    def __init__(self, buffer: CompletingJitterBuffer, codec: RTCRtpCodecParameters) -> None:
        self._RTCRtpReceiver__jitter_buffer = buffer
        self._RTCRtpReceiver__codecs = {codec.payloadType: codec}
        self._RTCRtpReceiver__timestamp_mapper = rtcrtpreceiver.TimestampMapper()


async def test_frame_sink_flushes_what_a_gap_held_back_when_the_stream_ends() -> None:
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    buffer = CompletingJitterBuffer(capacity=512, is_video=True)
    receiver = StoppingReceiver(buffer, codec)
    track = rtcrtpreceiver.RemoteStreamTrack(kind="video")
    output = track._queue
    sink = ingest.FrameSink(track, receiver)  # type: ignore[arg-type]

    def packet(seq: int, timestamp: int, data: bytes, marker: bool = False) -> RtpPacket:
        p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, marker=marker)
        p._data = data  # type: ignore[attr-defined]
        return p

    key = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\x68\x01"
    for p in (packet(0, 1000, key, True), packet(1, 4000, b"\x11a"), packet(3, 4000, b"b", True)):
        _, frame = buffer.add(p)  # 2 is lost, and the caller hangs up at once
        if frame is not None:
            mapper = receiver._RTCRtpReceiver__timestamp_mapper
            frame.timestamp = mapper.map(frame.timestamp)
            sink.put((codec, frame))
    buffer.add(packet(4, 7000, b"\x11c"))  # the start of a frame whose end never came
    sink.put(None)
    frames = []
    while not output.empty():
        frames.append(output.get_nowait())
    assert frames[-1] is None
    got = [(f.data, f.pts) for f in frames[:-1] if f is not None]
    assert got == [(key, 0), (b"\x11ab", 3000), (b"\x11c", 6000)]
    assert buffer.flush() == []  # nothing is held twice


def test_sender_report_ntp_time() -> None:
    # 2024-01-01T00:00:00.5Z as NTP: seconds since 1900 in the high word, half in the low.
    unix = 1_704_067_200
    report = ingest.SenderReport(
        ssrc=1,
        ntp=((unix + NTP_UNIX_OFFSET) << 32) | (1 << 31),
        rtp=0,
        pts=0,
        arrival=0.0,
        packets=0,
        octets=0,
    )
    assert report.ntp_time == unix + 0.5


def test_keyframe_detection() -> None:
    idr = b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x00\x01\x68\xce" + b"\x00\x00\x01\x65\x88"
    delta = b"\x00\x00\x00\x01\x41\x9a\x00"
    assert is_keyframe("H264", idr)
    assert not is_keyframe("H264", delta)
    assert is_keyframe("VP8", b"\x10\x02\x00\x9d\x01\x2a\x80\x02\x68\x01")
    assert not is_keyframe("VP8", b"\x31\x02\x00")
    # The tail of a frame whose first packets were lost: P bit clear, but no start code.
    assert not is_keyframe("VP8", b"\x10\x02\x00\x4c\x01\x2a\x80\x02\x68\x01")
    assert not is_keyframe("VP8", b"\x10\x02\x00\x9d\x01\x2a")  # cut short
    assert is_keyframe("opus", b"\xfc")


def nal_units(codec: str, data: bytes) -> list[bytes]:
    if codec != "H264":
        return [data]
    return [n.strip(b"\x00") for n in data.split(b"\x00\x00\x01") if n.strip(b"\x00")]


@pytest.mark.parametrize("codec", ["H264", "VP8"])
@pytest.mark.usefixtures("media_path")  # on the C path and on the pure-Python path
async def test_real_loopback_yields_encoded_frames(
    codec: str, h264_clip: Clip, vp8_clip: Clip, loopback: Callable[[Clip], Any]
) -> None:
    patches.install()
    clip = h264_clip if codec == "H264" else vp8_clip
    receivers: dict[str, rtcrtpreceiver.RTCRtpReceiver] = {}
    async with loopback(clip) as (_, server, tracks):
        reports: dict[str, list[ingest.SenderReport]] = {"video": [], "audio": []}
        for t in server.getTransceivers():
            receivers[t.kind] = t.receiver
            ingest.on_sender_report(t.receiver, reports[t.kind].append)
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
        # aiortc's sender reports about once a second: (NTP, RTP) pairs on the frames' scale.
        for _ in range(100):
            if reports["video"] and reports["audio"]:
                break
            await asyncio.sleep(0.05)
        for kind, clock in (("video", 90000), ("audio", 48000)):
            report = reports[kind][0]
            assert report.pts is not None and 0 <= report.pts < 10 * clock
            assert abs(report.ntp_time - report.arrival) < 1.0
            assert abs(report.arrival - time.time()) < 10
